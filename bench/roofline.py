"""How far each learner's update is from this CPU's matmul limit (a roofline at the update's own GEMM shapes).

For every learner (SAC classic and CrossQ, TD3 on Hopper-v5's shapes; chunked BC, diffusion, flow and MeanFlow on
PandaPush's with H = 16, T_o = 2; the residual TD3 learner on PandaPush's observation + base proposal):

1. the matmul FLOPs of one `update()` call, counted from the shapes its matmuls are dispatched with
   (`robot_rl.train.flops.update_flops`, after warm-up updates, over a whole actor-delay cycle);
2. the machine's sustained FP32 GEMM time at exactly those shapes and layouts (`torch.mm`/`torch.bmm` into a
   preallocated output, on 1 and 2 torch threads, median of blocks), so the update's bound is
   Σ_shapes count · t(shape) → updates/s bound per thread count;
3. the measured updates/s (synthetic batches cycled from a pool, so only the update is timed) and its fraction
   of that bound; Stable-Baselines3 SAC at identical hyperparameters (`model.train` on a replay buffer filled with
   random Hopper-v5 steps) next to robot_rl SAC sampling the same transitions from its own replay buffer;
4. a `torch.profiler` breakdown of robot_rl SAC's update on 1 thread: self CPU time by category.

Every round runs, for 1 and then 2 threads, one GEMM block per shape and one block of every learner (in an
order rotated per round), so load from other processes hits all alike. Writes <out-dir>/roofline.{json,md} and
<doc> (docs/performance.md), every number in them rendered from the JSON (`--from-json` regenerates both).

JSON keys: command, quick, settings, machine (cpu_model, logical_cpus, load_avg_1m_before_after, torch, blas, …),
learners.<name> and sb3_sac (flops.per_call, flops.shapes [op, m, k, n, batch, count, layout, flops],
bound.<threads>.updates_per_s, measured.<threads>.updates_per_s, fraction_of_bound.<threads>), sac_replay
(measured), ratio_sac_over_sb3.<threads>, peak_gemm.<threads>, gemms, profile (categories, top_ops), skipped.

Usage: .venv/bin/python bench/roofline.py [--quick] [--rounds 7] [--block-s 0.5] [--learners sac td3 ...]
           [--out-dir docs/benchmarks] [--doc docs/performance.md]
       .venv/bin/python bench/roofline.py --from-json docs/benchmarks/roofline.json
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import json
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_common import cpu_model  # noqa: E402
from robot_rl.algos.registry import get_algorithm  # noqa: E402
from robot_rl.core.specs import PolicySpec  # noqa: E402
from robot_rl.core.types import Batch  # noqa: E402
from robot_rl.train.batches import requested_layout, sample_batches, torch_batches  # noqa: E402
from robot_rl.train.flops import UpdateFlops, update_flops  # noqa: E402

HOPPER, PUSH = "Hopper-v5", "robot_rl/PandaPush-v0"
THREADS = (1, 2)
CHUNK = (("chunk_size", 16), ("execution_horizon", 8), ("obs_history", 2))
"""H, H_a, T_o of the chunked learners (bench/generative_success.py's, Diffusion Policy's)."""
POOL = 8
"""Synthetic batches per learner, cycled (no batch-making inside the timed updates)."""
REFERENCE_SAC_GFLOP = 0.59
"""A back-of-envelope count of one SAC update's matmuls (batch 256, 256x256, actor + twin critics + targets, every
network's forward and full backward): the figure the counted one is compared with."""


@dataclass(frozen=True)
class Case:
    """A learner as benchmarked: the registered algorithm, its config changes and the env whose shapes it gets."""

    algo: str
    overrides: tuple[tuple[str, Any], ...]
    env: str
    proposal: bool = False
    """Residual learners: the observation is the env's followed by the base's proposal `[O + A]`."""
    recipe: str = ""


CASES: dict[str, Case] = {
    "sac": Case("sac", (), HOPPER, recipe="classic"),
    "sac_crossq": Case("sac", (), HOPPER, recipe="crossq"),
    "sac_compiled": Case("sac", (("compile_update", True),), HOPPER, recipe="classic"),
    "td3": Case("td3", (), HOPPER),
    "bc_chunk": Case("bc", CHUNK, PUSH),
    "diffusion": Case("diffusion", CHUNK, PUSH),
    "flow": Case("flow", CHUNK, PUSH),
    "meanflow": Case("meanflow", CHUNK, PUSH),
    "residual": Case("residual", (), PUSH, proposal=True),
    "residual_sac": Case("residual_sac", (), PUSH, proposal=True),
    "bc": Case("bc", (), PUSH),
    "lac": Case("lac", (("horizon", 5),), HOPPER),
}
"""Every learner this script can measure, in table order."""
DEFAULT_LEARNERS = ("sac", "sac_compiled", "sac_crossq", "td3", "bc_chunk", "diffusion", "flow", "meanflow", "residual")
SKIPPED = {
    "dsrl": "its update is SAC's, on the noise-space view of a generative base (its action is the base's noise "
    "[H·A]); the shapes come from a base bundle, which a synthetic benchmark does not have",
}


@dataclass(frozen=True)
class Settings:
    """How much of everything is run."""

    rounds: int = 7
    block_s: float = 0.5
    """Target wall-clock of one timed block of updates."""
    gemm_block_s: float = 0.05
    """Target wall-clock of one timed block of one GEMM shape."""
    warmup: int = 20
    """Untimed updates of each learner before counting and timing."""
    profile_updates: int = 200
    sb3_fill: int = 5000
    """Random Hopper-v5 steps in SB3's (and robot_rl's) replay buffer."""

    @staticmethod
    def quick() -> Settings:
        return Settings(rounds=2, block_s=0.03, gemm_block_s=0.0005, warmup=2, profile_updates=3, sb3_fill=300)


# ----------------------------------------------------------------------------- learners and their batches


def env_spec(env_id: str) -> PolicySpec:
    """The PolicySpec of `env_id` (shapes, action range) as the training driver builds it."""
    from robot_rl.train.envs import make_env, policy_spec_for

    env = make_env(env_id)
    try:
        return policy_spec_for(env, env_id)
    finally:
        env.close()


def build(case: Case, specs: dict[str, PolicySpec]) -> Any:
    """A fresh learner for `case` (seeded)."""
    torch.manual_seed(0)
    entry = get_algorithm(case.algo)
    cfg = dataclasses.replace(entry.default_config(case.recipe), **dict(case.overrides))
    spec = specs[case.env]
    if case.proposal:
        from robot_rl.residual.view import ProposalView

        spec = ProposalView("expert", case.env, 0).spec(spec)  # [obs, a_base], as `robot-rl train residual` sees it
    return entry.algo_cls(spec, cfg)


def synthetic_batches(algo: Any, seed: int = 0) -> Iterator[Batch[torch.Tensor]]:
    """An endless cycle over `POOL` random batches with the layout the learner asks for (chunks, history, n-step
    discount, cost sums: `robot_rl.train.batches.requested_layout`)."""
    layout = requested_layout(algo)
    spec, b = algo.spec, int(algo.cfg.batch_size)
    o, a = spec.observation.dim, spec.action.dim
    g = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    def unit(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g) * 2 - 1

    pool = [
        Batch(
            obs=normal(b, o),
            action=unit(b, a),
            reward=normal(b),
            next_obs=normal(b, o),
            terminated=(torch.rand(b, generator=g) < 0.01).float(),
            truncated=torch.zeros(b),
            action_chunk=unit(b, layout.chunk_size, a) if layout.chunk_size > 1 else None,
            obs_history=normal(b, layout.obs_history, o) if layout.obs_history > 1 else None,
            cost=torch.rand(b, generator=g),
            discount=torch.full((b,), layout.gamma**layout.n_step) if layout.n_step > 1 else None,
            cost_sum=torch.rand(b, generator=g) * layout.cost_horizon if layout.cost_horizon > 0 else None,
        )
        for _ in range(POOL)
    ]
    return itertools.cycle(pool)


def cycle_calls(algo: Any) -> int:
    """`update` calls in one actor-delay cycle (1 without a delayed actor)."""
    return max(1, int(getattr(algo.cfg, "policy_delay", 1)))


class SB3Update:
    """Stable-Baselines3 SAC behind the `update(batches)` call (it samples its own replay buffer)."""

    def __init__(self, model: Any, batch_size: int) -> None:
        self.model, self.batch_size = model, batch_size

    def update(self, batches: Any = None, n: int = 1) -> None:
        self.model.train(gradient_steps=n, batch_size=self.batch_size)


def sb3_and_replay(fill: int, spec: PolicySpec) -> tuple[SB3Update, Any, Iterator[Batch[torch.Tensor]]]:
    """SB3 SAC (sac_vs_sb3.py's hyperparameters) with `fill` random Hopper-v5 steps in its buffer, and robot_rl's
    classic SAC with the same transitions in a `ReplayBuffer` sampled as the training driver samples it."""
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.logger import Logger

    from bench.sac_vs_sb3 import sb3_sac_kwargs
    from robot_rl.algos.sac import SAC, SACConfig
    from robot_rl.data.replay import ReplayBuffer

    model = SB3SAC(
        "MlpPolicy",
        HOPPER,
        **sb3_sac_kwargs(fill, 0),  # every step of the fill is random; `learn` ends before any update
        device="cpu",
        verbose=0,
    )
    # SB3's default logger creates a folder under /tmp on every `learn`; a logger without outputs writes nothing
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(total_timesteps=fill)
    rb, n = model.replay_buffer, model.replay_buffer.size()
    timeouts = rb.timeouts[:n, 0]
    done = rb.dones[:n, 0]
    buffer = ReplayBuffer(1_000_000, rb.observations.shape[-1], rb.actions.shape[-1])
    buffer.add_batch(
        rb.observations[:n, 0],
        rb.actions[:n, 0],
        rb.rewards[:n, 0],
        rb.next_observations[:n, 0],
        done * (1 - timeouts),  # truncation is not termination
        done * timeouts,
    )
    torch.manual_seed(0)
    stream = torch_batches(sample_batches(buffer, 256, np.random.default_rng(0)))
    return SB3Update(model, 256), SAC(spec, SACConfig()), stream


# ----------------------------------------------------------------------------- timing


GemmKey = tuple[int, int, int, int, str]


def gemm_id(g: GemmKey) -> str:
    m, k, n, b, lay = g
    return f"{m}x{k}x{n}" + (f" b{b}" if b > 1 else "") + f" {lay}"


def gemm_runner(g: GemmKey) -> Callable[[int], None]:
    """`run(reps)`: `reps` matmuls of shape `g` (transposed views where the layout says so) into one output."""
    m, k, n, b, lay = g
    gen = torch.Generator().manual_seed(m * 7 + k * 13 + n)

    def operand(rows: int, cols: int, transposed: bool) -> torch.Tensor:
        t = torch.randn(b, cols, rows, generator=gen).mT if transposed else torch.randn(b, rows, cols, generator=gen)
        return t if b > 1 else t[0]

    x, y = operand(m, k, lay[0] == "T"), operand(k, n, lay[1] == "T")
    out = torch.empty(b, m, n) if b > 1 else torch.empty(m, n)
    op = torch.bmm if b > 1 else torch.mm

    def run(reps: int) -> None:
        for _ in range(reps):
            op(x, y, out=out)

    return run


def calibrate(run: Callable[[int], Any], target_s: float, minimum: int = 1) -> int:
    """Repetitions of `run(n)` that take about `target_s` (doubling until a run takes a quarter of it)."""
    n = minimum
    while True:
        t0 = time.perf_counter()
        run(n)
        dt = time.perf_counter() - t0
        if dt >= target_s / 4 or n >= 1 << 24:
            return max(minimum, round(n * target_s / max(dt, 1e-9)))
        n *= 2


def timed(run: Callable[[int], Any], n: int) -> float:
    """Seconds per repetition of one block of `n`."""
    t0 = time.perf_counter()
    run(n)
    return (time.perf_counter() - t0) / n


def updates_of(algo: Any, batches: Iterator[Batch[torch.Tensor]]) -> Callable[[int], None]:
    """`run(n)`: `n` calls of `algo.update(batches)`."""

    def run(n: int) -> None:
        for _ in range(n):
            algo.update(batches)

    return run


def rotated(names: Sequence[str], k: int) -> list[str]:
    k %= max(len(names), 1)
    return [*names[k:], *names[:k]]


# ----------------------------------------------------------------------------- profiler breakdown

CATEGORIES = (
    "GEMM",
    "pointwise",
    "reductions",
    "optimizer",
    "autograd engine / other overhead",
    "copies / allocation",
    "Python between ops (untraced)",
)
_GEMM_OPS = {"mm", "addmm", "bmm", "baddbmm", "mv", "addmv", "linear", "matmul", "convolution", "_convolution"}
_GEMM_NODES = ("MmBackward", "AddmmBackward", "BmmBackward", "BaddbmmBackward", "ConvolutionBackward")
_REDUCTIONS = {
    "sum", "mean", "min", "max", "amin", "amax", "var", "std", "var_mean", "norm", "linalg_vector_norm", "prod",
    "logsumexp", "mse_loss", "mse_loss_backward", "value_selecting_reduction_backward", "any", "all", "argmax",
    "argmin", "cumsum",
}  # fmt: skip
_COPIES = {
    "copy_", "_to_copy", "to", "empty", "empty_strided", "empty_like", "zeros", "zeros_like", "ones", "ones_like",
    "full", "full_like", "cat", "stack", "clone", "contiguous", "resize_", "new_empty", "new_zeros", "new_ones",
    "new_empty_strided", "scalar_tensor", "lift_fresh", "index", "index_select", "gather",
}  # fmt: skip
_VIEWS = {
    "view", "reshape", "as_strided", "as_strided_", "t", "transpose", "expand", "unsqueeze", "unsqueeze_", "squeeze",
    "squeeze_", "slice", "narrow", "split", "split_with_sizes", "select", "detach", "detach_", "permute", "alias",
    "_unsafe_view", "unbind", "chunk", "resolve_conj", "resolve_neg", "result_type", "item", "_local_scalar_dense",
    "flatten", "view_as", "expand_as", "numpy_T", "is_nonzero", "requires_grad_",
}  # fmt: skip


def categorize(name: str) -> str:
    """The category of a profiler event by its name (an unknown aten op counts as pointwise, the usual remainder)."""
    if name.startswith("Optimizer.") or "_fused_adam" in name or "_foreach_" in name:
        return "optimizer"
    if any(name.startswith(node) for node in _GEMM_NODES):
        return "GEMM"
    if name.startswith("autograd::") or name.startswith("torch::autograd") or "Backward" in name:
        return "autograd engine / other overhead"
    op = name.removeprefix("aten::")
    if name.startswith("aten::"):
        if op in _GEMM_OPS:
            return "GEMM"
        if op in _REDUCTIONS:
            return "reductions"
        if op in _COPIES:
            return "copies / allocation"
        if op in _VIEWS:
            return "autograd engine / other overhead"
        return "pointwise"
    return "autograd engine / other overhead"  # detach, user annotations, anything else


def profile_breakdown(algo: Any, batches: Iterator[Batch[torch.Tensor]], updates: int) -> dict[str, Any]:
    """Self CPU time of `updates` updates by category (per update, and as shares of the profiled wall-clock)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(updates):
            algo.update(batches)
        wall_us = (time.perf_counter() - t0) * 1e6
    per_cat = dict.fromkeys(CATEGORIES, 0.0)
    ops = []
    for e in prof.key_averages():
        us = float(e.self_cpu_time_total)
        cat = categorize(e.key)
        per_cat[cat] += us
        ops.append({"op": e.key, "category": cat, "calls_per_update": e.count / updates, "self_us": us / updates})
    traced = sum(per_cat.values())
    per_cat["Python between ops (untraced)"] = max(0.0, wall_us - traced)
    ops.sort(key=lambda r: -r["self_us"])
    return {
        "updates": updates,
        "threads": torch.get_num_threads(),
        "profiled_wall_us_per_update": round(wall_us / updates, 1),
        "categories": {
            c: {"self_us_per_update": round(v / updates, 1), "share": round(v / wall_us, 4)} for c, v in per_cat.items()
        },
        "top_ops": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in ops[:20]],
    }


# ----------------------------------------------------------------------------- the run


def measure(learner_names: Sequence[str], st: Settings, with_sb3: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Count, time and profile; the report dict (JSON-ready, without command and machine)."""
    unknown = [n for n in learner_names if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown learners {unknown}; choose from {list(CASES)}")
    specs = {env: env_spec(env) for env in sorted({CASES[n].env for n in learner_names} | {HOPPER})}
    torch.set_num_threads(1)
    algos: dict[str, Any] = {}
    streams: dict[str, Iterator[Batch[torch.Tensor]]] = {}
    flops: dict[str, UpdateFlops] = {}
    shapes_info: dict[str, dict[str, Any]] = {}
    for name in learner_names:
        algo = build(CASES[name], specs)
        stream = synthetic_batches(algo)
        t0 = time.perf_counter()
        flops[name] = update_flops(algo, stream, calls=cycle_calls(algo), warmup=st.warmup)
        layout = requested_layout(algo)
        algos[name], streams[name] = algo, stream
        shapes_info[name] = {
            "algo": CASES[name].algo,
            "recipe": CASES[name].recipe,
            "overrides": dict(CASES[name].overrides),
            "env": CASES[name].env,
            "obs_dim": algo.spec.observation.dim,
            "act_dim": algo.spec.action.dim,
            "batch_size": int(algo.cfg.batch_size),
            "chunk_size": layout.chunk_size,
            "obs_history": layout.obs_history,
            "hidden": {
                k: v for k in ("actor_hidden", "critic_hidden", "width", "depth") if (v := getattr(algo.cfg, k, None))
            },
        }
        log(f"{name}: {flops[name].per_call / 1e9:.4f} GFLOP of matmuls per update ({time.perf_counter() - t0:.1f} s)")

    runners: dict[str, Callable[[int], Any]] = {}
    for name in learner_names:
        runners[name] = updates_of(algos[name], streams[name])
    if with_sb3:
        sb3, ours, ours_stream = sb3_and_replay(st.sb3_fill, specs[HOPPER])
        flops["sb3_sac"] = update_flops(sb3, iter(()), calls=1, warmup=st.warmup)
        hopper = specs[HOPPER]
        shapes_info["sb3_sac"] = {
            "algo": "stable_baselines3.SAC",
            "env": HOPPER,
            "obs_dim": hopper.observation.dim,
            "act_dim": hopper.action.dim,
            "batch_size": 256,
        }
        for _ in range(st.warmup):
            ours.update(ours_stream)
        runners["sb3_sac"] = lambda n: sb3.update(n=n)  # one `model.train(gradient_steps=n)` call
        runners["sac_replay"] = updates_of(ours, ours_stream)
        log(f"sb3_sac: {flops['sb3_sac'].per_call / 1e9:.4f} GFLOP of matmuls per update")

    gemms: dict[GemmKey, Callable[[int], None]] = {}
    for f in flops.values():
        for g in f.gemms():
            gemms.setdefault(g, gemm_runner(g))
    log(f"{len(gemms)} distinct GEMM shapes")

    # Block sizes, calibrated once on 1 thread (2 threads then run the same count, a shorter block).
    reps = {g: calibrate(run, st.gemm_block_s) for g, run in gemms.items()}
    block = {name: calibrate(run, st.block_s) for name, run in runners.items()}
    gemm_s: dict[int, dict[GemmKey, list[float]]] = {t: {g: [] for g in gemms} for t in THREADS}
    upd_s: dict[int, dict[str, list[float]]] = {t: {n: [] for n in runners} for t in THREADS}
    load_before = os.getloadavg()
    gc.collect()
    for r in range(st.rounds):
        for t in THREADS:
            torch.set_num_threads(t)
            for g in rotated(list(gemms), r):
                gemm_s[t][g].append(timed(gemms[g], reps[g]))
            for name in rotated(list(runners), r):
                upd_s[t][name].append(timed(runners[name], block[name]))
        log(f"round {r + 1}/{st.rounds} done")
    load_after = os.getloadavg()

    torch.set_num_threads(1)
    profile = profile_breakdown(algos["sac"], streams["sac"], st.profile_updates) if "sac" in algos else None
    if profile is not None:
        profile["unprofiled_wall_us_per_update"] = round(1e6 * float(np.median(upd_s[1]["sac"])), 1)

    med_gemm = {t: {g: float(np.median(v)) for g, v in gemm_s[t].items()} for t in THREADS}
    gemm_rows = [
        {
            "id": gemm_id(g),
            "m": g[0],
            "k": g[1],
            "n": g[2],
            "batch": g[3],
            "layout": g[4],
            "flops_each": 2 * g[0] * g[1] * g[2] * g[3],
            "reps_per_block": reps[g],
            "us_per_call": {str(t): round(med_gemm[t][g] * 1e6, 3) for t in THREADS},
            "us_per_call_min": {str(t): round(min(gemm_s[t][g]) * 1e6, 3) for t in THREADS},
            "gflops": {str(t): round(2 * g[0] * g[1] * g[2] * g[3] / med_gemm[t][g] / 1e9, 2) for t in THREADS},
        }
        for g in sorted(gemms, key=lambda g: -g[0] * g[1] * g[2] * g[3])
    ]
    peak = {}
    for t in THREADS:
        best = max(gemm_rows, key=lambda row: row["gflops"][str(t)])
        peak[str(t)] = {"gflops": best["gflops"][str(t)], "shape": best["id"]}

    def entry(name: str) -> dict[str, Any]:
        f = flops[name]
        out: dict[str, Any] = {"shapes": shapes_info[name], "flops": f.to_json(), "gflop_per_update": f.per_call / 1e9}
        bound, measured, fraction = {}, {}, {}
        for t in THREADS:
            s_per_update = sum(c * med_gemm[t][g] for g, c in f.gemms().items()) / f.calls
            bound[str(t)] = {
                "s_per_update": s_per_update,
                "updates_per_s": round(1 / s_per_update, 2),
                "updates_per_s_at_peak": round(peak[str(t)]["gflops"] * 1e9 / f.per_call, 2),
            }
            blocks = upd_s[t][name]
            ups = 1 / float(np.median(blocks))
            measured[str(t)] = {
                "updates_per_s": round(ups, 2),
                "updates_per_block": block[name],
                "block_updates_per_s": [round(1 / b, 2) for b in blocks],
            }
            fraction[str(t)] = round(ups * s_per_update, 4)
        out.update(bound=bound, measured=measured, fraction_of_bound=fraction)
        return out

    report: dict[str, Any] = {"learners": {name: entry(name) for name in learner_names}}
    if with_sb3:
        report["sb3_sac"] = entry("sb3_sac")
        report["sac_replay"] = {
            "what": "robot_rl SAC (classic) sampling the same random Hopper-v5 transitions from its ReplayBuffer "
            "through the training driver's batch stream (numpy gather + torch conversion inside the timed updates)",
            "measured": {
                str(t): {
                    "updates_per_s": round(1 / float(np.median(upd_s[t]["sac_replay"])), 2),
                    "updates_per_block": block["sac_replay"],
                }
                for t in THREADS
            },
        }
        report["ratio_sac_over_sb3"] = {
            str(t): round(
                report["sac_replay"]["measured"][str(t)]["updates_per_s"]
                / report["sb3_sac"]["measured"][str(t)]["updates_per_s"],
                3,
            )
            for t in THREADS
        }
    report.update(
        peak_gemm=peak,
        gemms=gemm_rows,
        profile=profile,
        skipped=dict(SKIPPED),
        load_avg_1m_before_after=[round(load_before[0], 2), round(load_after[0], 2)],
    )
    return report


def machine_info() -> dict[str, Any]:
    found = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "blas": found.group(1) if found else "unknown",
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", ""),
    }
    try:
        import stable_baselines3

        info["stable_baselines3"] = stable_baselines3.__version__
    except ImportError:
        info["stable_baselines3"] = None
    return info


# ----------------------------------------------------------------------------- rendering (from the JSON only)


def _f(x: float | None, fmt: str = ".1f") -> str:
    return "–" if x is None else format(x, fmt)


def _rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = list(report["learners"].items())
    if "sb3_sac" in report:
        rows.append(("sb3_sac (peer)", report["sb3_sac"]))
    return rows


def render_markdown(report: dict[str, Any]) -> str:
    m, st = report["machine"], report["settings"]
    load = m["load_avg_1m_before_after"]
    smoke = "\n**Smoke run (`--quick`): the numbers below check that the script works; they measure nothing.**\n"
    lines = [
        "# Roofline: each learner's update vs this CPU's matmul limit",
        "",
        "```",
        report["command"],
        "```",
        smoke if report["quick"] else "",
        f"- CPU: {m['cpu_model']}, {m['logical_cpus']} logical CPUs ({m['cpu_capability']}); 1-minute load "
        f"average {load[0]} before, {load[1]} after the timing",
        f"- torch {m['torch']} (BLAS: {m['blas']}), GOMP_SPINCOUNT={m['gomp_spincount'] or 'unset'}, Python "
        f"{m['python']}, Stable-Baselines3 {m['stable_baselines3']}",
        f"- {st['rounds']} rounds; each round, on 1 then 2 threads: one block per GEMM shape (~{st['gemm_block_s']} s) "
        f"and one block per learner (~{st['block_s']} s), in an order rotated per round; medians over rounds",
        "",
        "## Updates per second: measured vs the GEMM bound",
        "",
        "Bound = Σ over the update's matmuls of the time `torch.mm`/`torch.bmm` takes at that shape and layout on "
        "this machine (so it includes torch's per-call cost of a small matmul); `at peak` = matmul FLOPs at the "
        "best rate of any shape.",
        "",
        "| learner | shapes | GFLOP / update | bound 1T | measured 1T | fraction 1T | bound 2T | measured 2T "
        "| fraction 2T | bound at peak 1T / 2T |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in _rows(report):
        s = e["shapes"]
        shape = f"{s['env'].split('/')[-1]} O{s['obs_dim']}" + (f" A{s['act_dim']}" if "act_dim" in s else "")
        if s.get("chunk_size", 1) > 1:
            shape += f" H{s['chunk_size']} T{s['obs_history']}"
        b, me, fr = e["bound"], e["measured"], e["fraction_of_bound"]
        lines.append(
            f"| {name} | {shape} B{s['batch_size']} | {e['gflop_per_update']:.3f} | {b['1']['updates_per_s']:.0f} | "
            f"{me['1']['updates_per_s']:.1f} | {100 * fr['1']:.0f}% | {b['2']['updates_per_s']:.0f} | "
            f"{me['2']['updates_per_s']:.1f} | {100 * fr['2']:.0f}% | "
            f"{b['1']['updates_per_s_at_peak']:.0f} / {b['2']['updates_per_s_at_peak']:.0f} |"
        )
    if "ratio_sac_over_sb3" in report:
        r, rep = report["ratio_sac_over_sb3"], report["sac_replay"]["measured"]
        lines += [
            "",
            "## robot_rl SAC vs Stable-Baselines3 SAC (same random Hopper-v5 replay data, same hyperparameters)",
            "",
            "| torch threads | SB3 `model.train` updates/s | robot_rl SAC from its ReplayBuffer updates/s | ratio |",
            "|---|---|---|---|",
        ]
        for t in ("1", "2"):
            lines.append(
                f"| {t} | {report['sb3_sac']['measured'][t]['updates_per_s']:.1f} | "
                f"{rep[t]['updates_per_s']:.1f} | {r[t]:.2f}x |"
            )
        lines += ["", report["sac_replay"]["what"] + "; SB3 samples its own buffer inside `model.train`."]
    pk = report["peak_gemm"]
    lines += [
        "",
        "## FP32 GEMM rate at the recorded shapes",
        "",
        f"Best: {pk['1']['gflops']:.1f} GFLOP/s on 1 thread ({pk['1']['shape']}), {pk['2']['gflops']:.1f} on 2 "
        f"({pk['2']['shape']}). Layout: N = row-major operand, T = transposed view, as the update's op saw it.",
        "",
        "| m×k×n (batch) layout | MFLOP | µs 1T | GFLOP/s 1T | µs 2T | GFLOP/s 2T |",
        "|---|---|---|---|---|---|",
    ]
    for g in report["gemms"]:
        lines.append(
            f"| {g['id']} | {g['flops_each'] / 1e6:.3f} | {g['us_per_call']['1']:.2f} | {g['gflops']['1']:.1f} | "
            f"{g['us_per_call']['2']:.2f} | {g['gflops']['2']:.1f} |"
        )
    prof = report.get("profile")
    if prof:
        lines += ["", *_profile_table(prof)]
        lines += [
            "",
            "Top ops by self time (per update):",
            "",
            "| op | category | calls | self µs |",
            "|---|---|---|---|",
        ]
        for op in prof["top_ops"][:12]:
            lines.append(f"| `{op['op']}` | {op['category']} | {op['calls_per_update']:g} | {op['self_us']:.1f} |")
    sac = report["learners"].get("sac")
    if sac:
        lines += ["", "## SAC's matmuls, shape by shape", "", *_sac_flops_lines(sac, report.get("sb3_sac"))]
    if report.get("skipped"):
        lines += ["", "Not measured: " + "; ".join(f"`{k}`: {v}" for k, v in report["skipped"].items()) + "."]
    return "\n".join(lines) + "\n"


def _profile_table(prof: dict[str, Any]) -> list[str]:
    out = [
        f"## Where robot_rl SAC's update spends its time ({prof['threads']} thread, torch.profiler)",
        "",
        f"{prof['updates']} updates; {prof['profiled_wall_us_per_update'] / 1e3:.2f} ms per update under the profiler "
        f"({prof['unprofiled_wall_us_per_update'] / 1e3:.2f} ms without it). Self CPU time per category; the last row "
        "is the wall-clock no traced op accounts for (Python between ops, profiler bookkeeping).",
        "",
        "| category | µs / update | share |",
        "|---|---|---|",
    ]
    for cat, v in prof["categories"].items():
        out.append(f"| {cat} | {v['self_us_per_update']:.0f} | {100 * v['share']:.1f}% |")
    return out


def _sac_count_sentence(sac: dict[str, Any], sb3: dict[str, Any] | None) -> str:
    """SAC's counted matmul FLOPs against the back-of-envelope estimate (and SB3's count, when measured)."""
    gflop, s = sac["gflop_per_update"], sac["shapes"]
    out = (
        f"One SAC update (obs {s['obs_dim']}, act {s['act_dim']}, batch {s['batch_size']}, actor "
        f"{'×'.join(map(str, s['hidden']['actor_hidden']))} and twin critics "
        f"{'×'.join(map(str, s['hidden']['critic_hidden']))} with target critics) is {gflop:.4f} GFLOP of matmuls "
        "counted at dispatch, "
        f"{100 * (gflop / REFERENCE_SAC_GFLOP - 1):+.0f}% against the ≈ {REFERENCE_SAC_GFLOP} GFLOP back-of-envelope "
        "estimate (a forward and a full backward of every network). It is less than that: the actor step asks "
        "the frozen critic for no weight-gradients, and a first layer whose input needs no gradient (observations, "
        "replayed actions) computes none."
    )
    if sb3:
        out += (
            f" SB3's update, whose actor step also computes the critics' weight-gradients, counts "
            f"{sb3['gflop_per_update']:.4f} GFLOP."
        )
    return out


def _sac_flops_lines(sac: dict[str, Any], sb3: dict[str, Any] | None) -> list[str]:
    f = sac["flops"]
    out = [
        f"FlopCounterMode over the same calls: {f['flop_counter_total'] / f['calls'] / 1e9:.4f} GFLOP per update. "
        + _sac_count_sentence(sac, sb3),
        "",
        "| op | m | k | n | batch | calls / update | layout | MFLOP / update |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in f["shapes"]:
        out.append(
            f"| {s['op']} | {s['m']} | {s['k']} | {s['n']} | {s['batch']} | {s['count'] / f['calls']:g} | "
            f"{s['layout']} | {s['flops'] / f['calls'] / 1e6:.2f} |"
        )
    return out


def render_performance_doc(report: dict[str, Any]) -> str:
    """docs/performance.md: the headline figures, every one read from the roofline JSON."""
    m = report["machine"]
    sac = report["learners"].get("sac")
    lines = [
        "# Performance: how close the updates are to the CPU's matmul limit",
        "",
        "Rendered by `bench/roofline.py` from `docs/benchmarks/roofline.json` (full tables: "
        "[benchmarks/roofline.md](benchmarks/roofline.md)); regenerate with "
        "`python bench/roofline.py --from-json docs/benchmarks/roofline.json`. Measured with:",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"on {m['cpu_model']} ({m['logical_cpus']} logical CPUs, torch {m['torch']}, {m['blas']} BLAS), 1-minute load "
        f"average {m['load_avg_1m_before_after'][0]} before and {m['load_avg_1m_before_after'][1]} after.",
    ]
    if report["quick"]:
        lines += ["", "**This is a `--quick` smoke run: its numbers say nothing about speed.**"]
    pk = report["peak_gemm"]
    lines += [
        "",
        "A learner's bound is the time its update's matmuls take at their own shapes on this machine "
        f"(FP32 GEMM reaches {pk['1']['gflops']:.0f} GFLOP/s on 1 thread and {pk['2']['gflops']:.0f} on 2 at the "
        "best of those shapes); the fraction is measured updates/s over that bound: the rest of the update is "
        "pointwise work, the optimizer, autograd and Python.",
        "",
        "| learner | GFLOP / update | bound 1T | measured 1T | fraction | bound 2T | measured 2T | fraction |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in _rows(report):
        b, me, fr = e["bound"], e["measured"], e["fraction_of_bound"]
        lines.append(
            f"| {name} | {e['gflop_per_update']:.3f} | {b['1']['updates_per_s']:.0f}/s | "
            f"{me['1']['updates_per_s']:.1f}/s | {100 * fr['1']:.0f}% | {b['2']['updates_per_s']:.0f}/s | "
            f"{me['2']['updates_per_s']:.1f}/s | {100 * fr['2']:.0f}% |"
        )
    if sac:
        lines += ["", _sac_count_sentence(sac, report.get("sb3_sac"))]
    if "ratio_sac_over_sb3" in report:
        r = report["ratio_sac_over_sb3"]
        sb3 = report["sb3_sac"]
        lines += [
            "",
            f"Against Stable-Baselines3 SAC at identical hyperparameters, on the same replayed Hopper-v5 data: "
            f"robot_rl SAC runs {r['1']:.2f}x SB3's updates/s on 1 thread and {r['2']:.2f}x on 2. SB3's update "
            f"is {sb3['gflop_per_update']:.3f} GFLOP and reaches {100 * sb3['fraction_of_bound']['1']:.0f}% of its "
            f"bound on 1 thread ({100 * sb3['fraction_of_bound']['2']:.0f}% on 2).",
        ]
    prof = report.get("profile")
    if prof:
        cats = sorted(prof["categories"].items(), key=lambda kv: -kv[1]["share"])
        lines += [
            "",
            "Where SAC's update time goes (1 thread, torch.profiler, share of the profiled wall-clock): "
            + ", ".join(f"{c} {100 * v['share']:.0f}%" for c, v in cats)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def write_outputs(report: dict[str, Any], out_dir: Path, doc: Path, write_json: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "roofline.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "roofline.md").write_text(render_markdown(report))
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render_performance_doc(report))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script works (no numbers)")
    parser.add_argument("--learners", nargs="+", default=list(DEFAULT_LEARNERS), help=f"from {list(CASES)}")
    parser.add_argument("--no-sb3", action="store_true", help="leave out the Stable-Baselines3 peer")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; 2 with --quick)")
    parser.add_argument("--block-s", type=float, help="seconds per timed block of updates (default 0.5)")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    parser.add_argument("--doc", type=Path, default=REPO_ROOT / "docs" / "performance.md")
    parser.add_argument("--from-json", type=Path, help="re-render roofline.md and the doc from this JSON (no run)")
    args = parser.parse_args(argv)
    if args.from_json:
        report: dict[str, Any] = json.loads(args.from_json.read_text())
        write_outputs(report, args.out_dir, args.doc, write_json=False)
        return report
    st = Settings.quick() if args.quick else Settings()
    if args.rounds:
        st = dataclasses.replace(st, rounds=args.rounds)
    if args.block_s:
        st = dataclasses.replace(st, block_s=args.block_s)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    command = ".venv/bin/python bench/roofline.py " + " ".join(shlex.quote(a) for a in argv_list)
    with_sb3 = not args.no_sb3
    if with_sb3:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            with_sb3 = False
    t0 = time.perf_counter()
    measured = measure(args.learners, st, with_sb3, lambda s: print(s, flush=True))
    machine = machine_info()
    machine["load_avg_1m_before_after"] = measured.pop("load_avg_1m_before_after")
    report = {
        "command": command.strip(),
        "quick": bool(args.quick),
        "settings": dataclasses.asdict(st),
        "machine": machine,
        **measured,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    if not with_sb3:
        report["skipped"]["sb3_sac"] = "stable_baselines3 is not installed" if not args.no_sb3 else "--no-sb3"
    write_outputs(report, args.out_dir, args.doc)
    print(render_performance_doc(report))
    return report


if __name__ == "__main__":
    main()
