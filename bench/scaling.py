"""The measured inputs of a scaling model of distributed collection (`--actors N`), and its projection to 256 actors.

Measures, on a local Ray (loopback, one CPU per core), per task:

(a) one collector actor's env steps/s collecting blocks with the current SAC policy (`Collector.collect`, timed
    inside the actor, and as the driver sees it back to back, Ray round trip included), no learner running;
(b) the learner's ingestion ceiling: transitions/s the driver takes from finished blocks into the replay buffer
    (`ray.get` + `ReplayBuffer.add_batch` + weight versions + `algo.observe`, as `run_distributed` does; no
    updates), and separately its update rate (SAC `update()` calls/s at the configured size and torch threads);
(c) bytes per transition of a block as shipped through the object store (the block's arrays' nbytes, its
    serialized size with pickle protocol 5 as Ray serializes numpy, and the object size Ray reports);
(d) the weight broadcast: `ray.put` time and size of the policy weights, and the time for N actors to fetch them.

Then projects, for N in {1, 2, 4, ..., 256} actors: env steps/s = min(N x per-actor rate, ingestion ceiling,
update ceiling / UTD), the network bytes/s of transitions and weight broadcasts at push interval K, and the N where
the learner saturates. Writes `<out-dir>/scaling.{json,md}` and the page `--doc` (default docs/scaling.md).

Usage: .venv/bin/python bench/scaling.py [--quick] [--tasks robot_rl/PandaReach-v0:pybullet Hopper-v5]
       [--utd 1 2] [--push-every 100] [--out-dir docs/benchmarks] [--doc docs/scaling.md] [--from-json JSON]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pickle
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_common import cpu_model, parse_task  # noqa: E402

ACTOR_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""Actor counts of the projection."""
DEFAULT_TASKS = ("robot_rl/PandaReach-v0:pybullet", "Hopper-v5")
"""`ENV[:BACKEND]`: a PyBullet Panda task and a MuJoCo one."""
TRANSITION_KEYS = ("obs", "action", "reward", "next_obs", "terminated", "truncated", "cost", "weight_version")
"""Per-transition arrays of a block (`Collector.collect`); the rest of a block is per-block metadata."""
ASSUMPTIONS = (
    "Actors scale linearly: N actors collect N times the measured single-actor rate (one CPU each, no contention "
    "for cores, memory bandwidth or the node's object store; a real cluster gives each actor its own core).",
    "One learner process (the driver) ingests every block and makes every update; its ceilings are the measured "
    "ingestion rate and the measured update rate divided by the update-to-data ratio (UTD gradient steps per env "
    "step). The model takes the smaller of the two, as if they overlapped; in `run_distributed` one thread does both, "
    "so the serial ceiling 1 / (1/ingestion + UTD/updates) is also shown and is the tighter bound.",
    "The learner saturates at the smallest N whose N x per-actor rate reaches the learner's ceiling; beyond it more "
    "actors add no env steps/s (throttle mode holds them back) and only add weight-broadcast traffic.",
    "Network: every transition crosses the network once (actor node to learner node) at the measured bytes per "
    "transition as shipped; every broadcast (one per K update() calls, i.e. per K env steps after learning starts) "
    "is fetched once per actor (an upper bound: actors on one node share one copy of the object).",
    "Measured on one node over loopback: a fetch from Ray's shared-memory object store costs no network transfer, so "
    "the fetch times are a lower bound for a cluster; the bytes/s columns are what a cluster's links must carry.",
    "Per-block Ray overhead beyond what was measured (scheduling at hundreds of actors, the GCS) is not modelled.",
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much to measure (the defaults; `--quick` shrinks them)."""

    block_steps: int = 100
    """Env steps per collected block (`--actor-block-steps`' default)."""
    actor_blocks: int = 20
    """Timed blocks of the single actor (after one warm-up block)."""
    ingest_blocks: int = 200
    """Blocks timed through ray.get + buffer add."""
    updates: int = 300
    """Timed SAC update() calls (after `warmup_updates`)."""
    warmup_updates: int = 20
    put_repeats: int = 20
    """ray.put calls of the weights timed."""
    fetch_repeats: int = 10
    """Broadcast rounds timed per fetcher count."""
    fetchers: tuple[int, ...] = (1, 2, 4)
    """Actor counts of the fetch measurement (light actors with no CPU reserved, so more than the cores fit)."""

    @staticmethod
    def quick() -> Settings:
        return Settings(
            block_steps=50,
            actor_blocks=2,
            ingest_blocks=5,
            updates=5,
            warmup_updates=1,
            put_repeats=3,
            fetch_repeats=2,
            fetchers=(1, 2),
        )


# ----------------------------------------------------------------------------- the projection (pure)


def saturation_actors(per_actor_steps_s: float, ceiling_steps_s: float) -> int | None:
    """The smallest N with N x per-actor rate >= the learner's ceiling (None when a rate is not positive/finite)."""
    if not (per_actor_steps_s > 0 and math.isfinite(per_actor_steps_s)):
        return None
    if not (ceiling_steps_s > 0 and math.isfinite(ceiling_steps_s)):
        return None
    ratio = ceiling_steps_s / per_actor_steps_s
    n = math.ceil(ratio)
    if n > 1 and math.isclose((n - 1) * per_actor_steps_s, ceiling_steps_s, rel_tol=1e-12):
        n -= 1  # float rounding of an exact multiple
    return max(1, n)


def project(
    per_actor_steps_s: float,
    ingest_steps_s: float,
    updates_per_s: float,
    utd: float,
    bytes_per_transition: float,
    weight_bytes: float,
    push_every: int,
    actor_counts: Sequence[int] = ACTOR_COUNTS,
) -> dict[str, Any]:
    """The scaling model: for each N in `actor_counts`, projected env steps/s and network bytes/s.

    Args:
        per_actor_steps_s: one actor's env steps/s.
        ingest_steps_s: transitions/s the learner can take into its buffer (no updates).
        updates_per_s: gradient updates/s the learner makes (no ingestion).
        utd: gradient updates per env step.
        bytes_per_transition: bytes one transition takes on the wire.
        weight_bytes: bytes of one weight broadcast.
        push_every: K, update() calls (= env steps after learning starts) between two broadcasts.
        actor_counts: the N to project.

    Returns:
        `update_ceiling_steps_s` (updates/s / UTD), `learner_ceiling_steps_s` (min of that and ingestion),
        `serial_ceiling_steps_s` (1 / (1/ingestion + UTD/updates): one thread does both), `bound_by`,
        `saturation_actors` (smallest N reaching the learner ceiling; `serial_saturation_actors` likewise), and
        `rows`: per N, `steps_per_s`, `limited_by` ("actors" or the learner's bound), `transition_bytes_per_s`,
        `broadcasts_per_s`, `weight_bytes_per_s` (one fetch per actor per broadcast), `total_bytes_per_s`.
    """
    if utd <= 0 or push_every <= 0:
        raise ValueError(f"utd and push_every must be positive, got {utd} and {push_every}")
    update_ceiling = updates_per_s / utd
    learner_ceiling = min(ingest_steps_s, update_ceiling)
    bound_by = "ingestion" if ingest_steps_s < update_ceiling else "updates"
    serial = 1.0 / (1.0 / ingest_steps_s + utd / updates_per_s) if ingest_steps_s > 0 and updates_per_s > 0 else 0.0
    rows = []
    for n in actor_counts:
        collect = n * per_actor_steps_s
        steps = min(collect, learner_ceiling)
        broadcasts = steps / push_every
        rows.append(
            {
                "actors": int(n),
                "collect_steps_per_s": collect,
                "steps_per_s": steps,
                "limited_by": "actors" if collect < learner_ceiling else bound_by,
                "serial_steps_per_s": min(collect, serial),
                "transition_bytes_per_s": steps * bytes_per_transition,
                "broadcasts_per_s": broadcasts,
                "weight_bytes_per_s": broadcasts * weight_bytes * n,
                "total_bytes_per_s": steps * bytes_per_transition + broadcasts * weight_bytes * n,
            }
        )
    return {
        "utd": utd,
        "push_every": push_every,
        "update_ceiling_steps_s": update_ceiling,
        "learner_ceiling_steps_s": learner_ceiling,
        "bound_by": bound_by,
        "serial_ceiling_steps_s": serial,
        "saturation_actors": saturation_actors(per_actor_steps_s, learner_ceiling),
        "serial_saturation_actors": saturation_actors(per_actor_steps_s, serial),
        "rows": rows,
    }


# ----------------------------------------------------------------------------- measurements


def serialized_bytes(obj: Any) -> int:
    """Bytes of `obj` serialized as Ray serializes numpy containers: pickle protocol 5, arrays out of band."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(memoryview(b).nbytes for b in buffers)


def ray_object_size(ray: Any, ref: Any) -> int | None:
    """The object's size as Ray's object store reports it (None when this Ray does not say)."""
    try:
        info = ray.experimental.get_object_locations([ref])
        size = info.get(ref, {}).get("object_size")
        return int(size) if size else None
    except Exception:  # an API that moved between Ray versions: the pickle size stands in
        return None


def build_learner(env_id: str, backend: str, seed: int = 0) -> tuple[Any, Any, Any]:
    """(SAC with its default config for `env_id`, its PolicySpec, the config)."""
    from robot_rl.algos.sac import SAC, SACConfig
    from robot_rl.train.envs import make_env, policy_spec_for

    env = make_env(env_id, backend=backend)
    try:
        spec = policy_spec_for(env, env_id)
    finally:
        env.close()
    torch.manual_seed(seed)
    cfg = SACConfig()
    return SAC(spec, cfg), spec, cfg


def measure_actor(ray: Any, env_id: str, backend: str, algo: Any, spec: Any, cfg: Any, st: Settings) -> tuple:
    """(a): one collector's env steps/s, and one real block for (b)/(c)."""
    from robot_rl.algos.registry import get_algorithm
    from robot_rl.core.config import config_to_json
    from robot_rl.scale.actors import CollectorSpec, collector_class, policy_weights

    cspec = CollectorSpec(
        env_id=env_id,
        backend=backend,
        algo="sac",
        algo_module=get_algorithm("sac").module,
        algo_config=config_to_json(cfg),
        policy_spec=spec.to_json(),
        seed=0,
    )
    weights = ray.put({"version": 0, "tensors": policy_weights(algo)})
    t_start = time.perf_counter()
    actor = collector_class().remote(cspec, 0, 0)
    ray.get(actor.ready.remote())
    start_s = time.perf_counter() - t_start
    try:
        block = ray.get(actor.collect.remote(st.block_steps, False, weights))  # warm-up: loads weights, resets
        collect_s, wall_s, steps = 0.0, 0.0, 0
        for _ in range(st.actor_blocks):
            t0 = time.perf_counter()
            block = ray.get(actor.collect.remote(st.block_steps, False, weights))
            wall_s += time.perf_counter() - t0
            collect_s += float(block["collect_s"])
            steps += int(block["env_steps"])
    finally:
        ray.kill(actor)
    result = {
        "block_steps": st.block_steps,
        "blocks": st.actor_blocks,
        "env_steps": steps,
        "actor_start_s": start_s,
        "in_actor_steps_per_s": steps / collect_s,
        "round_trip_steps_per_s": steps / wall_s,
        "round_trip_overhead_ms_per_block": 1e3 * (wall_s - collect_s) / st.actor_blocks,
    }
    return result, block


def measure_block_bytes(ray: Any, block: dict[str, Any]) -> dict[str, Any]:
    """(c): bytes per transition of `block` as shipped."""
    n = len(block["reward"])
    array_bytes = sum(int(block[k].nbytes) for k in TRANSITION_KEYS)
    all_bytes = serialized_bytes(block)
    ref = ray.put(block)
    ray_size = ray_object_size(ray, ref)
    del ref
    shipped = ray_size if ray_size else all_bytes
    return {
        "transitions": n,
        "array_bytes_per_transition": array_bytes / n,
        "serialized_block_bytes": all_bytes,
        "ray_object_bytes": ray_size,
        "bytes_per_transition": shipped / n,
        "block_overhead_bytes": shipped - array_bytes,
        "per_transition_arrays": {k: int(block[k].nbytes) // n for k in TRANSITION_KEYS},
    }


def measure_ingestion(ray: Any, algo: Any, block: dict[str, Any], st: Settings) -> dict[str, Any]:
    """(b1): transitions/s from finished blocks (made by a Ray task, so they sit in the object store as an actor's
    returned block does) into the buffer, as `run_distributed` stores them."""
    from robot_rl.core.types import DataSource
    from robot_rl.data.replay import ReplayBuffer
    from robot_rl.scale.versions import WeightVersions

    @ray.remote(num_cpus=1)
    def remake(b: dict[str, Any]) -> dict[str, Any]:
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in b.items()}

    src = ray.put(block)
    refs = [remake.remote(src) for _ in range(st.ingest_blocks)]
    ray.wait(refs, num_returns=len(refs))  # all finished: only the driver's side is timed
    n = len(block["reward"])
    capacity = max(n * st.ingest_blocks, 1)
    obs_dim, act_dim = block["obs"].shape[1], block["action"].shape[1]
    buffer = ReplayBuffer(capacity, obs_dim, act_dim)
    versions = WeightVersions(capacity)
    get_s = add_s = 0.0
    for ref in refs:
        t0 = time.perf_counter()
        b = ray.get(ref)
        t1 = time.perf_counter()
        start = buffer.pos
        buffer.add_batch(
            b["obs"],
            b["action"],
            b["reward"],
            b["next_obs"],
            b["terminated"],
            b["truncated"],
            cost=b["cost"],
            source=DataSource.ONLINE,
        )
        versions.record(start, b["weight_version"])
        algo.observe(b["next_obs"])
        get_s += t1 - t0
        add_s += time.perf_counter() - t1
    total = n * st.ingest_blocks
    return {
        "blocks": st.ingest_blocks,
        "transitions": total,
        "ray_get_us_per_block": 1e6 * get_s / st.ingest_blocks,
        "add_us_per_block": 1e6 * add_s / st.ingest_blocks,
        "transitions_per_s": total / (get_s + add_s),
    }


def measure_updates(algo: Any, block: dict[str, Any], cfg: Any, st: Settings, threads: int) -> dict[str, Any]:
    """(b2): SAC update() calls/s sampling a buffer filled from the collected block (no ingestion)."""
    from robot_rl.data.replay import ReplayBuffer
    from robot_rl.train.batches import sample_batches, torch_batches

    torch.set_num_threads(threads)
    n = len(block["reward"])
    reps = max(1, math.ceil(cfg.batch_size / n))
    buffer = ReplayBuffer(n * reps, block["obs"].shape[1], block["action"].shape[1])
    for _ in range(reps):
        buffer.add_batch(
            block["obs"], block["action"], block["reward"], block["next_obs"], block["terminated"], block["truncated"]
        )
    batches = torch_batches(sample_batches(buffer, cfg.batch_size, np.random.default_rng(0)))
    for _ in range(st.warmup_updates):
        algo.update(batches)
    t0 = time.perf_counter()
    for _ in range(st.updates):
        algo.update(batches)
    elapsed = time.perf_counter() - t0
    calls_per_s = st.updates / elapsed
    return {
        "updates": st.updates,
        "torch_threads": threads,
        "batch_size": int(cfg.batch_size),
        "actor_hidden": list(cfg.actor_hidden),
        "critic_hidden": list(cfg.critic_hidden),
        "gradient_steps_per_call": int(cfg.utd_ratio),
        "update_calls_per_s": calls_per_s,
        "updates_per_s": calls_per_s * int(cfg.utd_ratio),
    }


def measure_broadcast(ray: Any, algo: Any, st: Settings) -> dict[str, Any]:
    """(d): ray.put time and size of the policy weights, and the time for N actors to receive them."""
    from robot_rl.scale.actors import policy_weights

    tensors = policy_weights(algo)
    payload = {"version": 0, "tensors": tensors}
    put_s = []
    for i in range(st.put_repeats):
        payload = {"version": i, "tensors": policy_weights(algo)}  # a fresh copy each time, as `push` makes
        t0 = time.perf_counter()
        ref = ray.put(payload)
        put_s.append(time.perf_counter() - t0)
        del ref
    ref = ray.put(payload)
    size = ray_object_size(ray, ref)
    del ref
    serialized = serialized_bytes(payload)

    @ray.remote(num_cpus=0)
    class Fetcher:
        def ready(self) -> int:
            return os.getpid()

        def take(self, w: dict[str, Any]) -> int:
            return int(w["version"])  # the weights arrive with the call, as with `collect`

    fetch = {}
    for n in st.fetchers:
        fetchers = [Fetcher.remote() for _ in range(n)]  # type: ignore[attr-defined]
        ray.get([f.ready.remote() for f in fetchers])
        try:
            with_w, without = [], []
            for i in range(st.fetch_repeats):
                t0 = time.perf_counter()
                r = ray.put({"version": i, "tensors": tensors})
                ray.get([f.take.remote(r) for f in fetchers])
                with_w.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                r = ray.put({"version": i, "tensors": {}})
                ray.get([f.take.remote(r) for f in fetchers])
                without.append(time.perf_counter() - t0)
                del r
        finally:
            for f in fetchers:
                ray.kill(f)
        med_w, med_0 = statistics.median(with_w), statistics.median(without)
        fetch[str(n)] = {
            "round_ms": 1e3 * med_w,
            "empty_round_ms": 1e3 * med_0,
            "weights_ms": 1e3 * max(0.0, med_w - med_0),
        }
    return {
        "tensors": len(tensors),
        "parameters": int(sum(v.size for v in tensors.values())),
        "array_bytes": int(sum(v.nbytes for v in tensors.values())),
        "serialized_bytes": serialized,
        "ray_object_bytes": size,
        "weight_bytes": size if size else serialized,
        "put_ms_median": 1e3 * statistics.median(put_s),
        "put_ms_max": 1e3 * max(put_s),
        "fetch": fetch,
    }


def measure_task(
    ray: Any, task: str, st: Settings, threads: int, utds: Sequence[float], push_every: int, log: Callable[[str], None]
) -> dict[str, Any]:
    env_id, backend = parse_task(task)
    log(f"[{task}] building the learner")
    algo, spec, cfg = build_learner(env_id, backend)
    log(f"[{task}] (a) one actor collecting {st.actor_blocks} blocks of {st.block_steps} steps")
    actor, block = measure_actor(ray, env_id, backend, algo, spec, cfg, st)
    log(f"[{task}] (c) bytes per transition")
    block_bytes = measure_block_bytes(ray, block)
    log(f"[{task}] (b) ingestion of {st.ingest_blocks} blocks")
    ingestion = measure_ingestion(ray, algo, block, st)
    log(f"[{task}] (b) {st.updates} SAC updates on {threads} torch thread(s)")
    updates = measure_updates(algo, block, cfg, st, threads)
    log(f"[{task}] (d) weight broadcast")
    broadcast = measure_broadcast(ray, algo, st)
    projections = [
        project(
            actor["in_actor_steps_per_s"],
            ingestion["transitions_per_s"],
            updates["updates_per_s"],
            utd,
            block_bytes["bytes_per_transition"],
            broadcast["weight_bytes"],
            push_every,
        )
        for utd in utds
    ]
    return {
        "task": task,
        "env_id": env_id,
        "backend": backend,
        "obs_dim": spec.observation.dim,
        "act_dim": spec.action.dim,
        "actor": actor,
        "ingestion": ingestion,
        "updates": updates,
        "block_bytes": block_bytes,
        "broadcast": broadcast,
        "projections": projections,
    }


def machine_info() -> dict[str, Any]:
    import ray

    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "ray": ray.__version__,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


# ----------------------------------------------------------------------------- rendering


def _n(x: float | None, digits: int = 3) -> str:
    """A number with `digits` significant figures and a thousands separator (— for none)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - mag)
    return f"{x:,.{decimals}f}"


def _bytes(x: float | None) -> str:
    if x is None:
        return "—"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(x) >= scale:
            return f"{_n(x / scale)} {unit}"
    return f"{_n(x)} B"


def _task_section(t: dict[str, Any]) -> list[str]:
    a, ing, up, bb, bc = t["actor"], t["ingestion"], t["updates"], t["block_bytes"], t["broadcast"]
    lines = [
        f"## {t['task']}",
        "",
        f"obs_dim {t['obs_dim']}, act_dim {t['act_dim']}; SAC actor {up['actor_hidden']}, critics "
        f"{up['critic_hidden']}, batch {up['batch_size']}.",
        "",
        "| measured input | value |",
        "|---|---|",
        f"| (a) one actor, env steps/s inside the actor ({a['blocks']} blocks of {a['block_steps']}) "
        f"| {_n(a['in_actor_steps_per_s'])} |",
        f"| (a) one actor, env steps/s seen by the driver (Ray round trip per block included) "
        f"| {_n(a['round_trip_steps_per_s'])} ({_n(a['round_trip_overhead_ms_per_block'])} ms per block) |",
        f"| (b) learner ingestion ceiling, transitions/s (ray.get {_n(ing['ray_get_us_per_block'])} µs + buffer add "
        f"{_n(ing['add_us_per_block'])} µs per block) | {_n(ing['transitions_per_s'])} |",
        f"| (b) learner update rate, gradient updates/s ({up['torch_threads']} torch thread(s)) "
        f"| {_n(up['updates_per_s'])} |",
        f"| (c) bytes per transition as shipped (arrays alone {_n(bb['array_bytes_per_transition'])} B) "
        f"| {_n(bb['bytes_per_transition'])} B |",
        f"| (d) policy weights per broadcast ({bc['parameters']:,} parameters) | {_bytes(bc['weight_bytes'])} |",
        f"| (d) `ray.put` of the weights, median (max) | {_n(bc['put_ms_median'])} ms ({_n(bc['put_ms_max'])} ms) |",
    ]
    for n, f in bc["fetch"].items():
        lines.append(
            f"| (d) {n} actor(s) receive the weights: broadcast round minus an empty round "
            f"| {_n(f['weights_ms'])} ms ({_n(f['round_ms'])} − {_n(f['empty_round_ms'])} ms) |"
        )
    for p in t["projections"]:
        sat, ser = p["saturation_actors"], p["serial_saturation_actors"]
        lines += [
            "",
            f"### Projection at UTD {p['utd']:g}, weights pushed every {p['push_every']} update() calls",
            "",
            f"Learner ceiling: min(ingestion {_n(ing['transitions_per_s'])}, updates/UTD "
            f"{_n(p['update_ceiling_steps_s'])}) = **{_n(p['learner_ceiling_steps_s'])} env steps/s** "
            f"(bound by {p['bound_by']}); it saturates at **N = {sat if sat is not None else '—'}** actors. "
            f"Ingesting and updating in one thread: {_n(p['serial_ceiling_steps_s'])} env steps/s, saturated at "
            f"N = {ser if ser is not None else '—'}.",
            "",
            "| actors | env steps/s | limited by | serial learner | transitions B/s | broadcasts/s "
            "| weights B/s (all actors) | total B/s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in p["rows"]:
            lines.append(
                f"| {r['actors']} | {_n(r['steps_per_s'])} | {r['limited_by']} | {_n(r['serial_steps_per_s'])} "
                f"| {_bytes(r['transition_bytes_per_s'])}/s | {_n(r['broadcasts_per_s'])} "
                f"| {_bytes(r['weight_bytes_per_s'])}/s | {_bytes(r['total_bytes_per_s'])}/s |"
            )
    return lines


def render_markdown(report: dict[str, Any], title: str = "# Scaling model of distributed collection") -> str:
    m = report["machine"]
    lines = [
        title,
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs (1-minute load average {m['load_avg_1m']} "
        f"at the start); Python {m['python']}, torch {m['torch']}, numpy {m['numpy']}, Ray {m['ray']}; local Ray "
        f"on loopback with {report['ray_cpus']} CPUs.",
    ]
    if report.get("quick"):
        lines += ["", "**`--quick` smoke run: tiny step counts; these figures say nothing about speed.**"]
    lines += [
        "",
        "Every figure below is computed from `scaling.json`; the projection is "
        "`env steps/s = min(N × per-actor rate, ingestion ceiling, updates/s ÷ UTD)`.",
        "",
        "Model assumptions:",
        "",
        *[f"- {a}" for a in report["assumptions"]],
        "",
    ]
    for t in report["tasks"]:
        lines += [*_task_section(t), ""]
    lines.append(f"Measured in {report['wall_s']} s.")
    return "\n".join(lines) + "\n"


def render_doc(report: dict[str, Any]) -> str:
    """docs/scaling.md: the same content, with where it came from."""
    head = (
        "# Scaling: how many actors one learner can use\n\n"
        "This page is written by `bench/scaling.py`, every number in it rendered from "
        "`docs/benchmarks/scaling.json` (`--from-json` regenerates it without measuring)."
    )
    body = render_markdown(report, title="").lstrip("\n")
    return head + "\n\n" + body


def write_outputs(report: dict[str, Any], out_dir: Path, doc: Path | None, write_json: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "scaling.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "scaling.md").write_text(render_markdown(report))
    if doc is not None:
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(render_doc(report))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script works (no numbers)")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help="ENV[:BACKEND] per task")
    parser.add_argument("--utd", type=float, nargs="+", default=[1.0], help="update-to-data ratios to project")
    parser.add_argument("--push-every", type=int, default=100, help="K: update() calls between weight broadcasts")
    parser.add_argument("--learner-threads", type=int, default=1, help="torch threads of the learner's updates")
    parser.add_argument("--block-steps", type=int, help="env steps per block (default 100; 50 with --quick)")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    parser.add_argument("--doc", type=Path, default=REPO_ROOT / "docs" / "scaling.md")
    parser.add_argument("--no-doc", action="store_true", help="write only <out-dir>/scaling.{json,md}")
    parser.add_argument("--from-json", type=Path, help="re-render scaling.md and the doc from this JSON (no run)")
    args = parser.parse_args(argv)
    doc = None if args.no_doc else args.doc
    if args.from_json:
        report: dict[str, Any] = json.loads(args.from_json.read_text())
        write_outputs(report, args.out_dir, doc, write_json=False)
        return report
    st = Settings.quick() if args.quick else Settings()
    if args.block_steps:
        st = dataclasses.replace(st, block_steps=args.block_steps)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    command = ".venv/bin/python bench/scaling.py " + " ".join(shlex.quote(a) for a in argv_list)

    from robot_rl.scale.ray_env import init_ray, shutdown_ray

    cpus = os.cpu_count() or 1
    temp = tempfile.mkdtemp(prefix="rrsc", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    t0 = time.perf_counter()
    machine = machine_info()
    owns = False
    try:
        import ray

        owns = not ray.is_initialized()
        ray = init_ray(num_cpus=cpus, temp_dir=temp)
        ray_cpus = float(ray.cluster_resources().get("CPU", 0.0))
        tasks = [
            measure_task(ray, task, st, args.learner_threads, args.utd, args.push_every, lambda s: print(s, flush=True))
            for task in args.tasks
        ]
    finally:
        if owns:
            shutdown_ray()
        shutil.rmtree(temp, ignore_errors=True)
    report = {
        "command": command.strip(),
        "quick": bool(args.quick),
        "settings": dataclasses.asdict(st),
        "actor_counts": list(ACTOR_COUNTS),
        "ray_cpus": ray_cpus,
        "machine": machine,
        "assumptions": list(ASSUMPTIONS),
        "tasks": tasks,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    write_outputs(report, args.out_dir, doc)
    print(render_markdown(report))
    return report


if __name__ == "__main__":
    main()
