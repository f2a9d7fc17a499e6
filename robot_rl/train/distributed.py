"""Distributed collection for off-policy learners (`--actors N`): N Ray actors step envs, this process learns.

What runs where: each actor (`robot_rl.scale.actors.Collector`, one CPU each) owns an env and a copy of the
deployable policy and returns blocks of `actor_block_steps` transitions; this process (the driver) owns the
replay buffer, the algorithm, evaluation, metrics and checkpoints, exactly as in `run_online`. Every
`weight_push_every` updates the policy's weights are put once in Ray's object store and the reference is handed to
every actor with its next block; the version they carry (the learner's update count when they were taken) is
stored per transition beside the buffer (`robot_rl.scale.versions`), and the lag learner − transition is logged.

The update-to-data ratio is the single-process loop's: one `update()` call per env step collected after
`learning_starts` (`s.step` counts the env steps of all actors). Two ways to keep it:

- `throttle`: actors collect while the learner trains; the learner makes at most the updates the collected steps
  call for (it waits for data when it is ahead), and an actor gets no new block while the learner owes more than
  one block per actor of updates (collected + in flight), which bounds how stale the data can get.
- `lockstep`: every actor collects one block with the same weights, then the learner makes all the updates those
  steps call for, then the next round. No overlap, but the run is a function of the seed.

A dead actor (`ray.exceptions.RayActorError`: its process crashed or was killed) is replaced by a fresh one with
new seeds; its block in flight is lost and counted (`data/actor_restarts`, `data/lost_blocks`); the run goes on.
Checkpoints hold the buffer, the weight versions and the counters; on resume the actors start from the
checkpointed weights, with new episodes (an actor's episode in progress is not part of a checkpoint).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import torch

from robot_rl.algos.registry import algo_config_from_json, get_algorithm, make_algorithm
from robot_rl.core.types import Batch, DataSource
from robot_rl.data.replay import ReplayBuffer
from robot_rl.scale.actors import CollectorSpec, check_act_reads_policy, collector_class, policy_weights
from robot_rl.scale.ray_env import init_ray, require_ray, shutdown_ray
from robot_rl.scale.versions import LagStats, WeightVersions
from robot_rl.train import checkpoint as ckpt
from robot_rl.train.config import TrainConfig
from robot_rl.train.evaluate import EvalResult
from robot_rl.train.session import TrainSession, next_multiple

_UPDATES_PER_POLL = 8
"""Updates between two looks for finished blocks in `throttle` mode: often enough that an idle actor gets its next
block within a few updates, rarely enough that polling Ray costs little beside a gradient step."""
_MAX_CONSECUTIVE_DEATHS = 3
"""An actor slot that dies this many times in a row without returning a block stops the run (an env that crashes
its process every time would otherwise be restarted forever)."""


@dataclass
class _Counters:
    """What the driver counts beside the session's steps (all saved in checkpoints)."""

    updates: int = 0
    """`update()` calls made; also the version of the learner's current weights."""
    pushed_version: int = 0
    """Version of the latest broadcast."""
    starts: int = 0
    """Actors started so far in this run (resumes and restarts included): the incarnation of the next one."""
    restarts: int = 0
    """Dead actors replaced (`data/actor_restarts`)."""
    lost_blocks: int = 0
    """Blocks in flight when their actor died (`data/lost_blocks`); their steps were collected again."""
    nonfinite_env_steps: int = 0
    """Env steps with a non-finite output, dropped by the actors (`data/nonfinite_env_steps`)."""


@dataclass
class _Slot:
    """One actor position: its current handle and the block it is collecting."""

    index: int
    handle: Any = None
    pending: Any = None
    """ObjectRef of the block in flight (None = idle)."""
    steps: int = 0
    """Env steps of the block in flight."""
    deaths: int = 0
    """Consecutive deaths without a block returned."""


@dataclass
class CollectorPool:
    """N collector actors, each with at most one block in flight; a dead one is replaced by a fresh one."""

    ray: ModuleType
    spec: CollectorSpec
    """The `CollectorSpec` every actor is built from."""
    counters: _Counters
    slots: list[_Slot] = field(default_factory=list)

    def start(self, n: int) -> None:
        """Start `n` actors and wait until each is built (a constructor error stops the run here, clearly)."""
        self.slots = [_Slot(i, self._new_actor(i)) for i in range(n)]
        for slot in self.slots:
            try:
                self.ray.get(slot.handle.ready.remote())
            except self.ray.exceptions.RayActorError as exc:
                raise RuntimeError(f"collector actor {slot.index} could not start: {exc}") from exc

    def _new_actor(self, index: int) -> Any:
        handle = collector_class().remote(self.spec, index, self.counters.starts)
        self.counters.starts += 1
        return handle

    def idle(self) -> list[_Slot]:
        return [s for s in self.slots if s.pending is None]

    def in_flight_steps(self) -> int:
        return sum(s.steps for s in self.slots if s.pending is not None)

    def submit(self, slot: _Slot, steps: int, uniform: bool, weights: Any) -> None:
        """Ask `slot` for a block of `steps` env steps, acting with the broadcast `weights` (an ObjectRef)."""
        slot.pending = slot.handle.collect.remote(steps, uniform, weights)
        slot.steps = steps

    def harvest(self, wait: Literal["none", "one", "all"]) -> list[dict[str, Any]]:
        """Finished blocks in actor order: those done now (`none`), at least one (`one`) or every one in flight
        (`all`). A block whose actor died is lost: counted, and the actor replaced."""
        busy = [s for s in self.slots if s.pending is not None]
        if not busy:
            return []
        refs = [s.pending for s in busy]
        if wait == "none":
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        else:
            ready, _ = self.ray.wait(refs, num_returns=len(refs) if wait == "all" else 1)
        done = set(ready)
        blocks = []
        for slot in busy:
            if slot.pending not in done:
                continue
            ref, slot.pending, slot.steps = slot.pending, None, 0
            try:
                blocks.append(self.ray.get(ref))
            except self.ray.exceptions.RayActorError as exc:
                self._replace(slot, exc)
            else:
                slot.deaths = 0
        return blocks

    def _replace(self, slot: _Slot, exc: BaseException) -> None:
        self.counters.restarts += 1
        self.counters.lost_blocks += 1
        slot.deaths += 1
        if slot.deaths >= _MAX_CONSECUTIVE_DEATHS:
            raise RuntimeError(
                f"collector actor {slot.index} died {slot.deaths} times in a row without returning a block; "
                f"last error: {exc}"
            ) from exc
        self._kill(slot)
        slot.handle = self._new_actor(slot.index)

    def _kill(self, slot: _Slot) -> None:
        try:
            self.ray.kill(slot.handle)
        except Exception:  # already gone: nothing to release
            pass

    def stop(self) -> None:
        """End every actor (blocks in flight are dropped; an env goes with its process)."""
        for slot in self.slots:
            slot.pending = None
            self._kill(slot)


def run_distributed(
    s: TrainSession,
    buffer: ReplayBuffer,
    batches: Iterator[Batch[torch.Tensor]],
    saved: ckpt.Checkpoint | None,
) -> EvalResult:
    """Train until `s.cfg.total_steps` env steps, collected by `s.cfg.actors` Ray actors; returns the final eval.

    Raises:
        ValueError: the learner cannot collect with actors (learners on a frozen base, imitation learners, an
            `act` that needs more than the policy's weights), a bad `actor_randomization`, or too few CPUs.
        RayUnavailable: Ray is not installed or the cluster at `ray_address` cannot be reached.
        RuntimeError: an actor cannot start, or keeps dying.
    """
    cfg, algo = s.cfg, s.algo
    spec = collector_spec_for(s)
    counters = _Counters()
    versions = WeightVersions(buffer.capacity)
    if saved is not None:
        _restore(s, saved, buffer, versions, counters)
    ray, owns_ray = _connect(cfg)
    pool = CollectorPool(ray, spec, counters)

    def push() -> Any:
        counters.pushed_version = counters.updates
        return ray.put({"version": counters.updates, "tensors": policy_weights(algo)})

    def save() -> None:
        data = {f"buffer/{k}": torch.from_numpy(v) for k, v in buffer.state_arrays().items()}
        data["distributed/weight_version"] = torch.from_numpy(versions.valid(len(buffer)).copy())
        state = {
            "buffer_pos": buffer.pos,
            "distributed": {
                "actors": cfg.actors,
                "updates": counters.updates,
                "weight_version": counters.updates,  # the checkpointed weights: what resumed actors start with
                "actor_starts": counters.starts,
                "actor_restarts": counters.restarts,
                "lost_blocks": counters.lost_blocks,
                "nonfinite_env_steps": counters.nonfinite_env_steps,
            },
        }
        s.save(data, state)

    def owed() -> int:
        """Updates the collected steps call for and the learner has not made yet."""
        return max(0, s.step - cfg.learning_starts) - counters.updates if len(buffer) else 0

    lockstep = cfg.sync_mode == "lockstep"
    lag_bound = cfg.actors * cfg.actor_block_steps
    next_eval = next_multiple(s.step, cfg.eval_every)
    next_ckpt = next_multiple(s.step, cfg.checkpoint_every)
    next_log = next_multiple(s.step, cfg.log_every)
    recent_returns: list[float] = []
    lag = LagStats()
    last_eval: EvalResult | None = None
    try:
        pool.start(cfg.actors)
        weights = push()  # the actors' first weights: fresh, or the checkpointed ones on resume
        while s.step < cfg.total_steps or owed() > 0:  # the last blocks' updates too: same UTD as run_online
            t0 = time.perf_counter()
            # 1. hand out blocks
            in_flight = pool.in_flight_steps()
            submitted = 0
            if not lockstep or (in_flight == 0 and owed() == 0):
                for slot in pool.idle():
                    n = min(cfg.actor_block_steps, cfg.total_steps - s.step - in_flight)
                    due_after = max(0, s.step + in_flight + n - cfg.learning_starts) - counters.updates
                    if n <= 0 or (not lockstep and len(buffer) and due_after > lag_bound):
                        break  # throttled: the learner owes more than a block per actor
                    uniform = s.step + in_flight < cfg.learning_starts
                    pool.submit(slot, n, uniform, weights)
                    in_flight += n
                    submitted += 1
            if in_flight == 0 and owed() == 0:
                raise RuntimeError(  # nothing collecting, nothing to learn: a bug, not a state to wait in
                    f"distributed loop stalled at step {s.step} with {counters.updates} updates"
                )
            # 2. store finished blocks
            wait: Literal["none", "one", "all"] = "all" if lockstep else ("none" if owed() > 0 else "one")
            for block in pool.harvest(wait):
                lag.add(counters.updates, block["weight_version"])
                start = buffer.pos
                buffer.add_batch(
                    block["obs"],
                    block["action"],
                    block["reward"],
                    block["next_obs"],
                    block["terminated"],
                    block["truncated"],
                    cost=block["cost"],
                    source=DataSource.ONLINE,
                )
                versions.record(start, block["weight_version"])
                algo.observe(block["next_obs"])
                s.step += int(block["env_steps"])
                s.bar.update(int(block["env_steps"]))
                counters.nonfinite_env_steps += int(block["nonfinite_env_steps"])
                for ret, length in zip(block["episode_returns"], block["episode_lengths"], strict=True):
                    recent_returns = [*recent_returns, float(ret)][-10:]
                    s.logger.log(
                        s.step,
                        s.train_wall_s,
                        {"train/episode_return": float(ret), "train/episode_length": int(length)},
                    )
            # 3. learn, and broadcast the weights when due
            n_updates = owed() if lockstep else min(owed(), _UPDATES_PER_POLL)
            for _ in range(n_updates):
                s.record(algo.update(batches))
                counters.updates += 1
            if counters.updates - counters.pushed_version >= cfg.weight_push_every:
                weights = push()
            s.train_wall_s += time.perf_counter() - t0

            if cfg.eval_every and s.step >= next_eval:
                last_eval = s.run_eval()
                next_eval = next_multiple(s.step, cfg.eval_every)
            if cfg.checkpoint_every and s.step >= next_ckpt:
                save()
                next_ckpt = next_multiple(s.step, cfg.checkpoint_every)
            if s.step >= next_log:
                extra = {
                    "time/steps_per_s": s.step / max(s.train_wall_s, 1e-9),
                    "data/nonfinite_env_steps": float(counters.nonfinite_env_steps),
                    "data/actor_restarts": float(counters.restarts),
                    "data/lost_blocks": float(counters.lost_blocks),
                    "data/weight_version": float(counters.pushed_version),
                    "data/updates": float(counters.updates),
                    **lag.flush(),
                }
                if recent_returns:
                    extra["train/recent_return"] = float(np.mean(recent_returns))
                s.flush_stats(extra)
                next_log = next_multiple(s.step, cfg.log_every)

        last_eval = s.finish(last_eval)
        save()
    finally:
        pool.stop()
        if owns_ray:
            shutdown_ray()
    return last_eval


def collector_spec_for(s: TrainSession) -> CollectorSpec:
    """The `CollectorSpec` of this run, after checking that its learner can collect with actors.

    Raises:
        ValueError: with the reason the learner or the randomization file does not qualify.
    """
    cj = s.config_json
    entry = get_algorithm(cj["algo"], cj.get("algo_module", ""))
    name = entry.name
    if entry.needs_dataset:
        raise ValueError(f"{name} imitates recorded data; --actors collects env steps for off-policy RL learners")
    if getattr(entry.algo_cls, "data_view", None) is not None or s.env_view is not None:
        raise ValueError(
            f"{name} sees the env through its frozen base's view, which the actors do not build; "
            "train it with --actors 0"
        )
    if not callable(getattr(s.algo, "act", None)):
        raise ValueError(f"{name} has no act(obs, deterministic) to explore with; --actors needs one")
    policy = s.algo.policy()
    if int(policy.obs_history) != 1 or int(policy.chunk_size) != 1:
        raise ValueError(f"{name} acts on observation histories or action chunks; --actors needs a per-step policy")
    algo_cfg = algo_config_from_json(name, cj["algo_config"], entry.module)
    with torch.random.fork_rng():  # the probe must not move the learner's random streams
        torch.manual_seed(s.cfg.seed + 1)  # other initial weights than the learner's
        fresh = make_algorithm(name, s.spec, algo_cfg, entry.module)
        check_act_reads_policy(s.algo, fresh, s.spec.observation.dim)
    return CollectorSpec(
        env_id=s.cfg.env,
        backend=s.cfg.backend,
        algo=name,
        algo_module=entry.module,
        algo_config=dict(cj["algo_config"]),
        policy_spec=dict(cj["policy_spec"]),
        seed=s.cfg.seed,
        randomizations=read_randomizations(s.cfg),
        needs_cost=bool(getattr(s.algo, "needs_cost", False)),
    )


def read_randomizations(cfg: TrainConfig) -> tuple[dict[str, Any], ...]:
    """The actors' domain randomizations from `cfg.actor_randomization` (checked here, before any actor starts).

    Raises:
        ValueError: the env is not a robot_rl/* suite env, or the file is missing or not valid.
    """
    if not cfg.actor_randomization:
        return ()
    if not cfg.env.startswith("robot_rl/") or "MetaWorld" in cfg.env:
        raise ValueError(f"actor_randomization needs a robot_rl/* suite env (sim randomization); {cfg.env} is not one")
    from sim.randomization import DomainRandomization

    path = Path(cfg.actor_randomization)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"actor_randomization {path}: cannot read a JSON file: {exc}") from None
    entries = raw if isinstance(raw, list) else [raw]
    if not entries or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"actor_randomization {path}: expected an object or a non-empty list of objects")
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(DomainRandomization.from_json(entry).to_json())
        except (ValueError, TypeError) as exc:
            raise ValueError(f"actor_randomization {path}, entry {i}: {exc}") from None
    return tuple(out)


def _connect(cfg: TrainConfig) -> tuple[ModuleType, bool]:
    """Ray, started or joined for this run; True when this run started it (and stops it at the end).

    Raises:
        ValueError: the cluster has fewer CPUs than actors (each actor reserves one; they would never start).
    """
    owns = not require_ray().is_initialized()
    # A local Ray offers at least one CPU per actor: more actors than cores is the user's (slower) choice, not a hang.
    local_cpus = None if cfg.ray_address else max(os.cpu_count() or 1, cfg.actors)
    ray = init_ray(cfg.ray_address, num_cpus=local_cpus)
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    if cpus < cfg.actors:
        if owns:
            ray.shutdown()
        raise ValueError(f"--actors {cfg.actors} needs one CPU per actor; the Ray cluster offers {cpus:g}")
    return ray, owns


def _restore(
    s: TrainSession, saved: ckpt.Checkpoint, buffer: ReplayBuffer, versions: WeightVersions, counters: _Counters
) -> None:
    st = saved.state
    dist = st.get("distributed")
    if dist is None:
        raise ckpt.CheckpointError(
            f"{saved.path} was written by the single-process loop (no distributed state); resume it with --actors 0"
        )
    s.restore(saved)
    buffer.load_state_arrays(
        {k[len("buffer/") :]: v.numpy() for k, v in saved.data.items() if k.startswith("buffer/")},
        pos=int(st["buffer_pos"]),
    )
    versions.load(saved.data["distributed/weight_version"].numpy())
    counters.updates = int(dist["updates"])
    counters.pushed_version = int(dist["weight_version"])
    counters.starts = int(dist["actor_starts"])
    counters.restarts = int(dist["actor_restarts"])
    counters.lost_blocks = int(dist["lost_blocks"])
    counters.nonfinite_env_steps = int(dist["nonfinite_env_steps"])
