"""Simulation speed: RobotTaskEnv control steps/s vs the bare physics of the same model, side by side.

    .venv/bin/python bench/sim_speed.py            # every suite id x {mujoco, pybullet}, ~3 min, 1 core
    .venv/bin/python bench/sim_speed.py --quick    # smoke run (seconds), written under /tmp unless --out-dir
    .venv/bin/python bench/sim_speed.py --from-json docs/benchmarks/sim_speed.json   # markdown only

For each Gymnasium id in `sim.registry.ROBOT_TASK_IDS` and each backend, in one process, one at a time:

* env: `RobotTaskEnv.step` with seeded uniform random actions (drawn up front, cycled), `reset` at every episode
  end (its cost is part of the env figure);
* bare (the peer): the *same* compiled model in the env's own engine state, `n_substeps` physics steps per
  control step with constant controls and no Python wrapper: `mujoco.mj_step(model, data, nstep=n_substeps)`
  on the env's `backend.model`/`backend.data`, or `pybullet.stepSimulation` `n_substeps` times on the env's own
  client.

Both in control steps per second of wall time. Env and bare runs alternate (env, bare, env, bare, ...) so drift and
other load on a shared machine hit both; the median of the repeats is reported. `wrapper_overhead` =
bare / env - 1: the extra time per control step the wrapper adds, as a fraction of the physics time.
Then the MuJoCo env with the largest overhead is run under cProfile to show where the wrapper's time goes.
Writes docs/benchmarks/sim_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import json
import os
import platform
import pstats
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import sim  # noqa: E402, F401  (registers the ids)
from bench.bench_common import cpu_model  # noqa: E402
from sim.registry import ROBOT_TASK_IDS  # noqa: E402

BACKENDS = ("mujoco", "pybullet")
TARGET_OVERHEAD_MUJOCO = 0.25
SPLIT_NOISE_US = 2.0  # reporting only: smaller differences in the one un-repeated split run count as noise
SPLIT_SLOWED = 1.25  # reporting only: a split run this much slower per step than the main table was disturbed
CONTENDED_CPU_UTIL = 0.9  # reporting only: a timed run below this got part of a core
ACTION_POOL = 4096
SEED = 0
REFERENCE_ENVS = ("InvertedPendulum-v5", "Pusher-v5")
QUICK_OUT_DIR = Path(os.environ.get("BENCH_SCRATCH", "/tmp/robot_rl_bench")) / "sim_speed"


# ----------------------------------------------------------------------------- one env


def result_key(env_id: str, backend: str) -> str:
    """The results key, e.g. "robot_rl/PandaReach-v0[mujoco]"."""
    return f"{env_id}[{backend}]"


def make_env(env_id: str, backend: str) -> Any:
    """The env behind a registered id, without Gymnasium's checker wrappers (a RobotTaskEnv for suite ids)."""
    if env_id in ROBOT_TASK_IDS:
        return gym.make(env_id, backend=backend, disable_env_checker=True).unwrapped
    return gym.make(env_id, disable_env_checker=True).unwrapped  # a Gymnasium MujocoEnv (reference)


def physics(env: Any) -> dict[str, Any]:
    """Engine handles of an env: engine name, physics steps per control step, model/data or client id."""
    if hasattr(env, "backend_name"):  # RobotTaskEnv
        b = env.backend
        if env.backend_name == "mujoco":
            return {"engine": "mujoco", "n": int(env.n_substeps), "model": b.model, "data": b.data}
        return {"engine": "pybullet", "n": int(env.n_substeps), "cid": b.cid}
    return {"engine": "mujoco", "n": int(env.frame_skip), "model": env.model, "data": env.data}


def action_pool(env: Any, seed: int) -> np.ndarray:
    """Seeded uniform random actions in the action space, drawn before timing."""
    space = env.action_space
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, size=(ACTION_POOL, *space.shape)).astype(space.dtype)


def bare_stepper(env: Any) -> Callable[[], None]:
    """One control step of bare physics on the env's own engine state: n_substeps steps, constant controls."""
    ph = physics(env)
    n = ph["n"]
    if ph["engine"] == "mujoco":
        import mujoco

        model, data, mj_step = ph["model"], ph["data"], mujoco.mj_step

        def step_mujoco() -> None:
            mj_step(model, data, nstep=n)

        return step_mujoco
    import pybullet as pb

    cid, step_simulation = ph["cid"], pb.stepSimulation

    def step_pybullet() -> None:
        for _ in range(n):
            step_simulation(physicsClientId=cid)

    return step_pybullet


def time_env(env: Any, actions: np.ndarray, seconds: float, seed: int) -> dict[str, float]:
    """Env control steps/s over at least `seconds` of wall time (resets included), from a seeded reset."""
    env.reset(seed=seed)
    step, reset, n_pool = env.step, env.reset, len(actions)
    clock = time.perf_counter
    n = episodes = 0
    cpu0, t0 = time.process_time(), clock()
    deadline = t0 + seconds
    while True:
        _, _, terminated, truncated, _ = step(actions[n % n_pool])
        n += 1
        if terminated or truncated:
            reset()
            episodes += 1
        if not n & 15 and clock() >= deadline:
            break
    wall, cpu = clock() - t0, time.process_time() - cpu0
    return {"steps_per_s": n / wall, "steps": n, "episodes": episodes, "wall_s": wall, "cpu_util": cpu / wall}


def time_bare(env: Any, seconds: float, seed: int) -> dict[str, float]:
    """Bare-physics control steps/s over at least `seconds`, starting from the env's seeded reset state.

    The reset leaves the controls holding the start pose (position/velocity servo) or at zero effort; they are
    not changed while timing.
    """
    env.reset(seed=seed)
    step = bare_stepper(env)
    clock = time.perf_counter
    n = 0
    cpu0, t0 = time.process_time(), clock()
    deadline = t0 + seconds
    while True:
        step()
        n += 1
        if not n & 15 and clock() >= deadline:
            break
    wall, cpu = clock() - t0, time.process_time() - cpu0
    return {"steps_per_s": n / wall, "steps": n, "wall_s": wall, "cpu_util": cpu / wall}


def physics_load(env: Any, actions: np.ndarray, steps: int, seed: int) -> dict[str, dict[str, float | None]]:
    """Mean contacts (and MuJoCo constraint rows) after each control step, env vs bare: is the peer's work alike?"""
    ph = physics(env)

    def sample() -> tuple[float, float | None]:
        if ph["engine"] == "mujoco":
            d = ph["data"]
            return float(d.ncon), float(d.nefc)
        import pybullet as pb

        return float(len(pb.getContactPoints(physicsClientId=ph["cid"]))), None

    def mean(rows: list[tuple[float, float | None]]) -> dict[str, float | None]:
        efc = [r[1] for r in rows if r[1] is not None]
        return {
            "contacts": round(float(np.mean([r[0] for r in rows])), 2),
            "constraints": round(float(np.mean(efc)), 2) if efc else None,
        }

    env.reset(seed=seed)
    env_rows = []
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
        env_rows.append(sample())
        if terminated or truncated:
            env.reset()
    env.reset(seed=seed)
    bare = bare_stepper(env)
    bare_rows = []
    for _ in range(steps):
        bare()
        bare_rows.append(sample())
    return {"env": mean(env_rows), "bare": mean(bare_rows)}


def time_split(env: Any, actions: np.ndarray, steps: int, seed: int) -> dict[str, float]:
    """Un-profiled split of a RobotTaskEnv step: total, and the part inside `backend.step` (a thin timing shim).

    On MuJoCo the controls each `backend.step` received are recorded too and then replayed on bare `mj_step`
    (`bare_replay_us`): the physics of the env's own trajectory, without the wrapper.
    """
    ph = physics(env)
    env.reset(seed=seed)
    backend = env.backend
    inner = backend.step
    clock = time.perf_counter
    spent = [0.0]
    ctrls: list[tuple[np.ndarray, int]] = []
    data = ph.get("data")

    def shim(n: int) -> int:
        if data is not None:
            ctrls.append((data.ctrl.copy(), n))
        t = clock()
        out = inner(n)
        spent[0] += clock() - t
        return int(out)

    backend.step = shim
    try:
        t0 = clock()
        for i in range(steps):
            _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
            if terminated or truncated:
                env.reset()
        total = clock() - t0
    finally:
        del backend.step  # back to the class method
    out = {"env_us": 1e6 * total / steps, "backend_step_us": 1e6 * spent[0] / steps}
    n_resets = max(10, steps // 20)
    t0 = clock()
    for _ in range(n_resets):
        env.reset()
    out["reset_us"] = 1e6 * (clock() - t0) / n_resets
    if data is not None:
        import mujoco

        model, mj_step = ph["model"], mujoco.mj_step
        env.reset(seed=seed)
        t0 = clock()
        for ctrl, n in ctrls:
            data.ctrl[:] = ctrl
            mj_step(model, data, nstep=n)
        out["bare_replay_us"] = 1e6 * (clock() - t0) / len(ctrls)
    return out


def measure(env_id: str, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then alternate env and bare timings `args.repeats` times; medians and the per-repeat runs."""
    env = make_env(env_id, backend)
    suite = env_id in ROBOT_TASK_IDS
    try:
        ph = physics(env)
        actions = action_pool(env, SEED)
        time_env(env, actions, args.warmup_s, SEED)
        time_bare(env, args.warmup_s, SEED)
        runs = []
        for rep in range(args.repeats):
            e = time_env(env, actions, args.seconds, SEED + rep)
            b = time_bare(env, args.seconds, SEED + rep)
            runs.append({"env": e, "bare": b})
            print(
                f"  {result_key(env_id, backend):<38} rep {rep}: env {e['steps_per_s']:8.0f}/s "
                f"(cpu {e['cpu_util']:.2f})  bare {b['steps_per_s']:8.0f}/s (cpu {b['cpu_util']:.2f})",
                flush=True,
            )
        split = time_split(env, actions, args.split_steps, SEED) if suite else None
        load = physics_load(env, actions, args.load_steps, SEED)
        steps_per_s = statistics.median(r["env"]["steps_per_s"] for r in runs)
        bare_steps_per_s = statistics.median(r["bare"]["steps_per_s"] for r in runs)
        n_substeps = ph["n"]
        control_dt_s = float(env.dt)
        physics_dt_s = control_dt_s / n_substeps
    finally:
        env.close()
    bare_us = 1e6 / bare_steps_per_s
    steps = sum(r["env"]["steps"] for r in runs)
    episodes = sum(r["env"]["episodes"] for r in runs)
    out: dict[str, Any] = {
        "env_id": env_id,
        "backend": backend,
        "steps_per_s": round(steps_per_s, 1),
        "bare_steps_per_s": round(bare_steps_per_s, 1),
        "wrapper_overhead": round(bare_steps_per_s / steps_per_s - 1.0, 3),
        "n_substeps": n_substeps,
        "physics_dt_s": physics_dt_s,
        "control_dt_s": control_dt_s,
        "physics_steps_per_s": round(steps_per_s * n_substeps, 1),
        "bare_physics_steps_per_s": round(bare_steps_per_s * n_substeps, 1),
        "realtime_factor": round(steps_per_s * control_dt_s, 1),
        "mean_episode_steps": round(steps / episodes, 1) if episodes else None,
        "wrapper_overhead_per_repeat": [
            round(r["bare"]["steps_per_s"] / r["env"]["steps_per_s"] - 1.0, 3) for r in runs
        ],
        "us_per_step": {
            "env": round(1e6 / steps_per_s, 1),
            "bare": round(bare_us, 1),
            "wrapper": round(1e6 / steps_per_s - bare_us, 1),
        },
        "physics_load": load,
        "runs": [
            {k: {kk: round(vv, 3) if isinstance(vv, float) else vv for kk, vv in v.items()} for k, v in run.items()}
            for run in runs
        ],
    }
    if split is not None:
        out["split_us_per_step"] = {
            "env": round(split["env_us"], 1),
            "backend_step": round(split["backend_step_us"], 1),
            "outside_backend_step": round(split["env_us"] - split["backend_step_us"], 1),
            "bare_replay": round(split["bare_replay_us"], 1) if "bare_replay_us" in split else None,
            "reset": round(split["reset_us"], 1),
        }
    return out


# ----------------------------------------------------------------------------- profile


def _group(filename: str, funcname: str) -> str:
    if "mj_step" in funcname or "stepSimulation" in funcname:
        return "physics (mj_step / stepSimulation)"
    for part, label in (
        ("sim/mujoco/backend.py", "sim/mujoco/backend.py"),
        ("sim/pybullet/backend.py", "sim/pybullet/backend.py"),
        ("sim/env.py", "sim/env.py"),
        ("sim/tasks/", "sim/tasks/"),
        ("sim/randomization.py", "sim/randomization.py"),
        ("sim/control.py", "sim/control.py"),
        ("numpy", "numpy (Python side)"),
        ("gymnasium", "gymnasium"),
    ):
        if part in filename:
            return label
    if filename == "~":
        if "mujoco" in funcname:
            return "other MuJoCo binding calls"
        if "numpy" in funcname or "ndarray" in funcname or "ufunc" in funcname:
            return "numpy (C side)"
        if "pybullet" in funcname:
            return "other PyBullet calls"
        return "Python builtins"
    return "other"


def profile_env(env_id: str, backend: str, steps: int, top: int) -> dict[str, Any]:
    """cProfile of `steps` env steps (after warm-up): time by function (tottime) and grouped by where it runs."""
    env = make_env(env_id, backend)
    try:
        actions = action_pool(env, SEED)
        env.reset(seed=SEED)

        def run(n: int) -> None:
            for i in range(n):
                _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
                if terminated or truncated:
                    env.reset()

        run(min(steps, 500))
        prof = cProfile.Profile()
        prof.enable()
        run(steps)
        prof.disable()
    finally:
        env.close()
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    groups: dict[str, float] = {}
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        groups[_group(filename, func)] = groups.get(_group(filename, func), 0.0) + tottime
        short = filename.replace(str(REPO_ROOT) + "/", "")
        short = short.split("site-packages/")[-1]
        where = func if filename == "~" else f"{short}:{line}({func})"
        rows.append((tottime, ncalls, cumtime, where))
    rows.sort(reverse=True)
    return {
        "key": result_key(env_id, backend),
        "steps": steps,
        "total_s": round(total, 3),
        "us_per_step_profiled": round(1e6 * total / steps, 1),
        "groups": {
            k: {"share": round(v / total, 3), "us_per_step": round(1e6 * v / steps, 1)}
            for k, v in sorted(groups.items(), key=lambda kv: -kv[1])
        },
        "top": [
            {
                "function": where,
                "calls_per_step": round(ncalls / steps, 2),
                "tottime_us_per_step": round(1e6 * tottime / steps, 1),
                "cumtime_us_per_step": round(1e6 * cumtime / steps, 1),
            }
            for tottime, ncalls, cumtime, where in rows[:top]
        ],
    }


# ----------------------------------------------------------------------------- machine


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    """CPU, cores, load and versions (the load average is the shared machine's, other processes included)."""
    import mujoco

    dirty = _git("status", "--porcelain", "--", "sim")
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "mujoco": mujoco.__version__,
        "pybullet": _version("pybullet"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "sim_uncommitted_changes": bool(dirty) if dirty is not None else None,
    }


# ----------------------------------------------------------------------------- report


def _overhead_cell(r: dict[str, Any], target: float | None) -> str:
    oh, per = r["wrapper_overhead"], r["wrapper_overhead_per_repeat"]
    mark = "" if target is None else (" ✓" if oh <= target else " ✗")
    spread = f" ({100 * min(per):.0f}–{100 * max(per):.0f}%)" if len(per) > 1 else ""
    return f"{100 * oh:.0f}%{mark}{spread}"


def table_rows(results: dict[str, dict[str, Any]], check_target: bool = True) -> list[str]:
    rows = [
        "| env | backend | substeps | env steps/s | bare steps/s | wrapper overhead | env µs/step | bare µs/step "
        "| x real time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.values():
        target = TARGET_OVERHEAD_MUJOCO if (check_target and r["backend"] == "mujoco") else None
        rows.append(
            f"| {r['env_id']} | {r['backend']} | {r['n_substeps']} | {r['steps_per_s']:,.0f} "
            f"| {r['bare_steps_per_s']:,.0f} | {_overhead_cell(r, target)} "
            f"| {r['us_per_step']['env']:.0f} | {r['us_per_step']['bare']:.0f} | {r['realtime_factor']:.0f} |"
        )
    return rows


def print_table(report: dict[str, Any]) -> None:
    print()
    print(f"command: {report['command']}")
    print(f"{'env [backend]':<40}{'sub':>4}{'env/s':>10}{'bare/s':>10}{'overhead':>10}{'env µs':>9}{'bare µs':>9}")
    for key, r in {**report["results"], **report.get("reference", {})}.items():
        print(
            f"{key:<40}{r['n_substeps']:>4}{r['steps_per_s']:>10.0f}{r['bare_steps_per_s']:>10.0f}"
            f"{100 * r['wrapper_overhead']:>9.0f}%{r['us_per_step']['env']:>9.0f}{r['us_per_step']['bare']:>9.0f}"
        )
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, load avg (1m) {m['load_avg_1m_before_after']}")
    mj = [r for r in report["results"].values() if r["backend"] == "mujoco"]
    if mj:
        ok = [r["env_id"] for r in mj if r["wrapper_overhead"] <= TARGET_OVERHEAD_MUJOCO]
        print(f"MuJoCo envs within {100 * TARGET_OVERHEAD_MUJOCO:.0f}% overhead: {len(ok)}/{len(mj)} {ok}")
    prof = report.get("profile")
    if prof:
        print(f"profile of {prof['key']} ({prof['steps']} steps, cProfile tottime by group):")
        for g, v in prof["groups"].items():
            print(f"  {g:<40}{100 * v['share']:>6.1f}%{v['us_per_step']:>9.1f} µs/step")


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    res = report["results"]
    load = m["load_avg_1m_before_after"]
    lines = [
        "# Simulation speed: RobotTaskEnv vs bare physics",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Machine: {m['cpu']} ({m['arch']}), {m['logical_cpus']} logical CPUs, shared with other jobs: 1-minute "
        f"load average {load[0]} before and {load[1]} after the run (1/5/15-minute after: "
        f"{', '.join(str(x) for x in m['load_avg_1_5_15_after'])}; above the core count means this process waited "
        "for a core at times; env and bare runs alternate so such waits hit both alike, and each run's `cpu_util` is "
        f"in the JSON). Python {m['python']}, numpy {m['numpy']}, gymnasium {m['gymnasium']}, MuJoCo {m['mujoco']}, "
        f"PyBullet {m['pybullet']}; git {m['git_commit']}"
        + (" with uncommitted changes under sim/" if m.get("sim_uncommitted_changes") else "")
        + f"; whole run {report['wall_s']:.0f} s.",
        "",
        f"Method: {report['method']}",
        "",
        *table_rows(res),
        "",
        "*wrapper overhead* = bare / env − 1 (median over repeats; range over the paired repeats in brackets): the "
        "extra time per control step the Python env adds on top of the physics it runs. "
        f"Target on MuJoCo: ≤ {100 * TARGET_OVERHEAD_MUJOCO:.0f}% (✓ met, ✗ missed). *x real time*: simulated "
        "seconds per wall-clock second through the env.",
    ]
    ref = report.get("reference") or {}
    if ref:
        lines += [
            "",
            "For scale, Gymnasium's own MuJoCo envs measured the same way in the same run (`MujocoEnv` unwrapped, "
            "bare = `mj_step(nstep=frame_skip)` on its model/data; no episode end without the TimeLimit wrapper "
            "except the pendulum's fall):",
            "",
            *table_rows(ref, check_target=False),
        ]
    split_rows = [r for r in res.values() if "split_us_per_step" in r]
    if split_rows:
        lines += [
            "",
            "Un-profiled split of an env step (a timing shim around `backend.step`, a separate run of "
            f"{report['split_steps']} steps). *bare, replayed controls*: `mj_step(nstep)` fed the controls the env "
            "actually applied in that run, i.e. the physics of the env's own trajectory with no wrapper. The split "
            f"is one un-repeated run: the reading below counts a difference under {SPLIT_NOISE_US:g} µs in it as "
            f"noise, and flags a split run more than {SPLIT_SLOWED:g}x slower per step than the main table as slowed "
            "by other load:",
            "",
            "| env | backend | env µs/step | in `backend.step` | outside `backend.step` | bare, constant controls "
            "| bare, replayed controls | one `reset()` |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in split_rows:
            s = r["split_us_per_step"]
            rep = f"{s['bare_replay']:.0f}" if s["bare_replay"] is not None else "–"
            lines.append(
                f"| {r['env_id']} | {r['backend']} | {s['env']:.0f} | {s['backend_step']:.0f} "
                f"| {s['outside_backend_step']:.0f} | {r['us_per_step']['bare']:.0f} | {rep} | {s['reset']:.0f} |"
            )
    lines += [
        "",
        "Is the peer doing the same physics? Mean contacts / MuJoCo constraint rows after a control step, env "
        "(random actions) vs bare (constant controls):",
        "",
        "| env | backend | contacts env / bare | constraint rows env / bare |",
        "|---|---|---|---|",
    ]
    for r in {**res, **ref}.values():
        pl = r["physics_load"]
        c = pl["env"]["constraints"]
        efc = f"{c} / {pl['bare']['constraints']}" if c is not None else "–"
        lines.append(f"| {r['env_id']} | {r['backend']} | {pl['env']['contacts']} / {pl['bare']['contacts']} | {efc} |")
    lines += ["", "## Reading", "", *reading(report)]
    prof = report.get("profile")
    if prof:
        lines += [
            "",
            f"## Where the wrapper's time goes: {prof['key']} (cProfile)",
            "",
            f"{prof['steps']} env steps under cProfile ({prof['us_per_step_profiled']:.0f} µs/step profiled; the "
            "profiler inflates every Python call, so read the shares, not the absolute times).",
            "",
            "| where | share of time | µs/step (profiled) |",
            "|---|---|---|",
            *[f"| {g} | {100 * v['share']:.1f}% | {v['us_per_step']:.1f} |" for g, v in prof["groups"].items()],
            "",
            "| function | calls/step | tottime µs/step | cumtime µs/step |",
            "|---|---|---|---|",
            *[
                f"| `{t['function']}` | {t['calls_per_step']:g} | {t['tottime_us_per_step']:.1f} "
                f"| {t['cumtime_us_per_step']:.1f} |"
                for t in prof["top"]
            ],
        ]
    return "\n".join(lines) + "\n"


def reading(report: dict[str, Any]) -> list[str]:
    """The interpretation (numbers from this run; the causes are what the split and the profile show)."""
    res = report["results"]
    mj = [r for r in res.values() if r["backend"] == "mujoco"]
    ok = [r["env_id"] for r in mj if r["wrapper_overhead"] <= TARGET_OVERHEAD_MUJOCO]
    bad = [r["env_id"] for r in mj if r["wrapper_overhead"] > TARGET_OVERHEAD_MUJOCO]
    out = []
    # A timed run that got well under a whole core (other jobs on a shared machine) makes its pair unreliable.
    contended = {
        r["env_id"]: min(x["cpu_util"] for run in r.get("runs", []) for x in (run["env"], run["bare"]))
        for r in mj
        if r.get("runs")
    }
    contended = {k: v for k, v in contended.items() if v < CONTENDED_CPU_UTIL}
    if mj:
        out.append(
            f"* **MuJoCo target (≤ {100 * TARGET_OVERHEAD_MUJOCO:.0f}% overhead): met by {len(ok)} of {len(mj)} "
            "envs**"
            + (f" ({', '.join(ok)})" if ok else "")
            + (f"; missed by {', '.join(bad)}." if bad else ".")
            + (
                f" Verdicts resting on timed runs that got under {CONTENDED_CPU_UTIL:.0%} of a core (other load): "
                + ", ".join(f"{k} (down to {v:.0%})" for k, v in contended.items())
                + "; their medians can land far off (see the range in brackets) and are not conclusive."
                if contended
                else ""
            )
        )
    for r in mj:
        s, us = r.get("split_us_per_step"), r["us_per_step"]
        if not s:
            continue
        replay = s["bare_replay"]
        beyond = s["backend_step"] - replay if replay is not None else None
        out.append(
            f"* {r['env_id']} (MuJoCo, {r['n_substeps']} substeps): {us['env']:.0f} µs per env step against "
            f"{us['bare']:.0f} µs of bare physics, i.e. {us['wrapper']:.0f} µs of wrapper. Split run: "
            f"`backend.step` {s['backend_step']:.0f} µs, the rest of `step()`/`reset()` "
            f"{s['outside_backend_step']:.0f} µs"
            + (
                f"; replaying the env's own controls costs {replay:.0f} µs bare, so "
                + (
                    f"{replay - us['bare']:.0f} µs of the gap is the physics of the env's own trajectory (not the "
                    "wrapper) "
                    if replay - us["bare"] >= SPLIT_NOISE_US
                    else "the env's own trajectory costs no more physics than the peer's (within noise) "
                )
                + (
                    f"and {beyond:.0f} µs is spent in `MujocoBackend.step` beyond the physics."
                    if beyond is not None and beyond >= SPLIT_NOISE_US
                    else "and `MujocoBackend.step` adds nothing measurable beyond the physics (its time is within the "
                    "run-to-run noise of the replay)."
                )
                if replay is not None
                else "."
            )
            + (
                # The split is one un-repeated run: flag it when other load slowed it well beyond the main timing.
                f" (This split run was slowed by other load on the machine: {s['env']:.0f} µs per env step there "
                f"against {us['env']:.0f} µs in the main table, so its figures are not the wrapper's.)"
                if s["env"] > SPLIT_SLOWED * us["env"]
                else ""
            )
        )
    out += analysis(report)
    ref = report.get("reference") or {}
    if ref:
        out.append(
            "* Gymnasium's own MuJoCo envs, measured the same way: "
            + ", ".join(f"{r['env_id']} {100 * r['wrapper_overhead']:.0f}%" for r in ref.values())
            + " overhead (physics "
            + ", ".join(f"{r['us_per_step']['bare']:.0f} µs" for r in ref.values())
            + " per step), i.e. "
            + ", ".join(f"{r['us_per_step']['wrapper']:.0f} µs" for r in ref.values())
            + " of Python per step: the floor for a lean Python env, against which "
            f"≤ {100 * TARGET_OVERHEAD_MUJOCO:.0f}% needs a control step to hold {1 / TARGET_OVERHEAD_MUJOCO:g} times "
            "that much physics."
        )
    return out


def _num(x: float) -> str:
    return f"{x:.1f}" if abs(x) < 10 else f"{x:.0f}"


def _span(values: list[float], unit: str = " µs") -> str:
    lo, hi = _num(min(values)), _num(max(values))
    return f"{lo}{unit}" if lo == hi else f"{lo} to {hi}{unit}"


def analysis(report: dict[str, Any]) -> list[str]:
    """Why the overheads are what they are: every figure from this run's split and tables (nothing typed in)."""
    mj = [r for r in report["results"].values() if r["backend"] == "mujoco" and r.get("split_us_per_step")]
    ref = list((report.get("reference") or {}).values())
    target = report.get("target_wrapper_overhead_mujoco", TARGET_OVERHEAD_MUJOCO)
    out: list[str] = []
    if mj:
        outside = [r["split_us_per_step"]["outside_backend_step"] for r in mj]
        beyond = [
            r["split_us_per_step"]["backend_step"] - r["split_us_per_step"]["bare_replay"]
            for r in mj
            if r["split_us_per_step"]["bare_replay"] is not None
        ]
        resets = [r["split_us_per_step"]["reset"] for r in mj]
        per_step = [
            r["split_us_per_step"]["reset"] / r["mean_episode_steps"] for r in mj if r.get("mean_episode_steps")
        ]
        out.append(
            "* What a control step costs besides the physics (split table, MuJoCo): the Python of `step()`/`reset()` "
            f"outside `backend.step` is {_span(outside)} per step; `MujocoBackend.step` adds {_span(beyond)} beyond "
            f"the replayed physics; one `reset()` (randomization off) costs {_span(resets)}, i.e. "
            f"{_span(per_step)} per step over the mean episode lengths. That Python is a few dozen numpy calls on "
            "small arrays (action scaling and clipping, the velocity integration and its clips, q/qd and "
            "end-effector copies for the observation, the task observation and the reward, one concatenate) plus "
            "the Python calls around them: about the floor of one env per Python call."
        )
        floor = min(ref, key=lambda r: r["us_per_step"]["wrapper"]) if ref else None
        budgets = []
        for r in mj:
            us = r["us_per_step"]
            budget = target * us["bare"]
            budgets.append(
                f"{r['env_id']} {_num(us['bare'])} µs of physics → {_num(budget)} µs allowed, "
                f"{_num(us['wrapper'])} µs used"
            )
        out.append(
            "* The relative overhead is therefore set by how much physics a control step holds: "
            f"≤ {100 * target:.0f}% allows {100 * target:.0f}% of the bare physics time for everything else "
            "(" + "; ".join(budgets) + ")."
        )
        for r in mj:
            us, pl = r["us_per_step"], r["physics_load"]
            if r["wrapper_overhead"] <= target:
                continue
            replay = r["split_us_per_step"]["bare_replay"]
            c_env, c_bare = pl["env"]["constraints"], pl["bare"]["constraints"]
            extra_physics = replay - us["bare"] if replay is not None else None
            reasons = []
            if c_env is not None and c_bare is not None and c_env > c_bare:
                reasons.append(
                    f"random actions drive it into contacts and joint limits that the constant-control peer never "
                    f"meets (constraint rows {c_env:g} vs {c_bare:g}; replaying the env's own controls costs "
                    f"{extra_physics:+.0f} µs of physics against the peer)"
                    if extra_physics is not None
                    else f"random actions drive it into contacts and joint limits (constraint rows {c_env:g} vs "
                    f"{c_bare:g})"
                )
            if floor is not None and target * us["bare"] < floor["us_per_step"]["wrapper"]:
                reasons.append(
                    f"its allowance ({target * us['bare']:.1f} µs) is below what Gymnasium's own "
                    f"{floor['env_id']} wrapper alone costs ({floor['us_per_step']['wrapper']:.1f} µs, reference "
                    "table): only batching many envs per Python call (or a compiled step) could get there"
                )
            out.append(
                f"* {r['env_id']} misses ({100 * r['wrapper_overhead']:.0f}%, paired repeats "
                f"{_span([100 * x for x in r['wrapper_overhead_per_repeat']], '%')})"
                + (": " + "; ".join(reasons) + "." if reasons else ".")
            )
    out += CODE_NOTES
    return out


# What the code does to keep the wrapper lean (a description of the code, no measurement: the figures are above).
CODE_NOTES = [
    "* In `MujocoBackend.step`: one `mj_step(m, d, nstep=n)` call (a single step first when an impulse is",
    "  pending), the warning counters read once before and once after (`d.warning.number.tolist()`), and the",
    "  final state checked with one Python float sum over qpos and qvel (the entry-wise `isfinite` only when that",
    "  is not finite), instead of a Python loop of `mj_step`s with a `getattr` per substep and per-substep struct",
    "  reads and `np.all(np.isfinite(...))`. Body ids are cached and consecutive joint addresses are sliced, so",
    "  `link_pose` and `robot_state` neither look names up nor copy twice.",
    "* Outside `backend.step`: numpy's clip ufunc is called directly (no `np.clip` dispatch), an action's",
    "  finiteness is one Python float sum, the action queue is bypassed at zero latency (no second validation",
    "  and copies), a zero bias and zero noise are neither drawn nor added (one `obs += 0.0` keeps their only",
    "  effect, -0.0 becoming +0.0), the per-step nuisances are skipped when none is on, reward-term keys are",
    "  cached, `np.linalg.norm` of the distance vectors is `math.sqrt(v.dot(v))` (what it computes), the",
    "  cart-pole task works on Python floats, and `to_physical` and the velocity lead reuse constants computed",
    "  once. None of this changes an observation, reward or info entry by a bit (tests/sim pin it).",
    "* `reset()` with randomization off reuses one nominal `EpisodeRandomization`, so the backend sees the sample",
    "  its model already holds and skips rewriting it and `mj_setConst`; the episode stream is not created and",
    "  the per-step streams are spawned on first use (spawning depends only on the seed sequence, so they are the",
    "  same whenever that happens); the reach task keeps its joint limits. What remains is `SeedSequence.spawn`,",
    "  the random generators and the `mj_forward`s of the task's own placement.",
    "* PyBullet has no multi-step call, so its bare peer is a Python loop of `stepSimulation` as well; it is not",
    "  held to the MuJoCo target. Its backend still reads the joint and object states back after every `step`",
    "  (a NaN check) and again for the observation.",
]


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=list(ROBOT_TASK_IDS), help="ids from sim.registry.ROBOT_TASK_IDS")
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument(
        "--reference-envs",
        nargs="*",
        default=None,
        help=f"Gymnasium MuJoCo envs measured the same way for scale (default {REFERENCE_ENVS}; none with --quick)",
    )
    p.add_argument("--seconds", type=float, default=3.0, help="wall time per timed run (env and bare each)")
    p.add_argument("--repeats", type=int, default=3, help="alternating env/bare pairs per env; the median is kept")
    p.add_argument("--warmup-s", type=float, default=1.0, help="untimed env and bare stepping first")
    p.add_argument("--split-steps", type=int, default=3000, help="env steps for the un-profiled split")
    p.add_argument("--load-steps", type=int, default=300, help="control steps for the contact comparison")
    p.add_argument("--profile-steps", type=int, default=5000, help="env steps under cProfile (0: no profile)")
    p.add_argument("--profile-top", type=int, default=15, help="functions listed from the profile")
    p.add_argument("--out-dir", type=Path, default=None, help=f"default docs/benchmarks (--quick: {QUICK_OUT_DIR})")
    p.add_argument("--quick", action="store_true", help="smoke run: 0.2 s timings, 1 repeat, short split and profile")
    p.add_argument("--from-json", type=Path, help="re-render sim_speed.md from this JSON (no measurement)")
    args = p.parse_args(argv)
    unknown = [e for e in args.envs if e not in ROBOT_TASK_IDS]
    if unknown:
        p.error(f"unknown env ids {unknown}; known: {list(ROBOT_TASK_IDS)}")
    if args.reference_envs is None:
        args.reference_envs = [] if args.quick else list(REFERENCE_ENVS)
    if args.quick:
        args.seconds, args.repeats, args.warmup_s = 0.2, 1, 0.05
        args.split_steps, args.load_steps = 50, 20
        args.profile_steps = min(args.profile_steps, 100)
    if args.out_dir is None:
        args.out_dir = QUICK_OUT_DIR if args.quick else REPO_ROOT / "docs" / "benchmarks"
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; write `sim_speed.json` and `sim_speed.md` under `--out-dir`; return the report."""
    args = parse_args(argv)
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        # Prose is rendered from the numbers, never stored beside them (older runs stored it: drop it).
        for stale in ("analysis", "reading"):
            if report.pop(stale, None) is not None:
                args.from_json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        (args.out_dir / "sim_speed.md").write_text(markdown(report))
        return report
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    command = " ".join([".venv/bin/python bench/sim_speed.py", *(shlex.quote(a) for a in raw_argv)])
    machine = machine_info()
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for env_id in args.envs:
        for backend in args.backends:
            results[result_key(env_id, backend)] = measure(env_id, backend, args)
    reference = {result_key(e, "mujoco"): measure(e, "mujoco", args) for e in args.reference_envs}
    load_after = os.getloadavg()
    machine["load_avg_1m_before_after"] = [round(load_before[0], 2), round(load_after[0], 2)]
    machine["load_avg_1_5_15_after"] = [round(x, 2) for x in load_after]
    prof = None
    if args.profile_steps > 0 and results:
        mj = [r for r in results.values() if r["backend"] == "mujoco"] or list(results.values())
        worst = max(mj, key=lambda r: r["wrapper_overhead"])
        prof = profile_env(worst["env_id"], worst["backend"], args.profile_steps, args.profile_top)
    report: dict[str, Any] = {
        "command": command,
        "machine": machine,
        "method": (
            f"one process, one env at a time; per env {args.warmup_s:g} s warm-up of each, then {args.repeats} "
            f"alternating pairs (env, bare) of ≥ {args.seconds:g} s wall each, median kept; seeded uniform random "
            f"actions (pool of {ACTION_POOL}, seed {SEED}), reset at episode end inside the env timing; bare = "
            "the env's own compiled model and engine state after a seeded reset, constant controls, "
            "`mj_step(m, d, nstep=n_substeps)` (MuJoCo) or `n_substeps` x `stepSimulation` (PyBullet) per control "
            "step; RobotTaskEnv without Gymnasium's checker wrappers; garbage collector on; time.perf_counter."
        ),
        "target_wrapper_overhead_mujoco": TARGET_OVERHEAD_MUJOCO,
        "split_steps": args.split_steps,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "results": results,
    }
    if reference:
        report["reference"] = reference
    if prof:
        report["profile"] = prof
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "sim_speed.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    (args.out_dir / "sim_speed.md").write_text(markdown(report))
    print_table(report)
    print(f"wrote {args.out_dir / 'sim_speed.json'} and {args.out_dir / 'sim_speed.md'}")
    return report


if __name__ == "__main__":
    main()
