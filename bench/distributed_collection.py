"""Distributed collection (`--actors N`) against the single-process loop: env steps/s, the learner's updates/s
and the learning curve, side by side in one run on a PyBullet Panda task.

For each `--actors` count (0 = the single-process loop, `robot_rl.train.online`; N >= 1 = N Ray actors on a local
loopback Ray, `robot_rl.train.distributed`) and each seed, one ordinary training run of the same learner with the
same budget, evaluated every `--eval-every` env steps on `--eval-episodes` seeded episodes. Both loops keep one
gradient update per env step after `learning_starts`, so a run makes the same number of updates whatever collects
its data; what can differ is the wall-clock (collection overlapping the updates) and the data (actors act with
weights up to one push interval old).

Reported per configuration: env steps/s and updates/s over the training wall-clock (evaluation excluded), the
speed-up against the single process of the same seed, final success and return, and the curves (success vs env
steps and vs wall-clock). Runs go one after another so each has the machine to itself. Ray starts and stops inside
each distributed run; its start-up and the actors' start are outside the training wall-clock, as evaluation is.

Also measured first: the env alone (uniform random actions, `--env-probe-steps` steps), the part of a single-process
step that actors can take off the learner. With one update per env step, the single process's time per step is
collection + update, and no number of actors can bring it below the update alone: the ideal speed-up is
(time per step) / (time per step − env time per step), printed next to the measured one.

Writes <out-dir>/distributed_collection.{json,md,png}.

Usage: .venv/bin/python bench/distributed_collection.py [--actors 0 1 2] [--steps 20000] [--seeds 0]
       .venv/bin/python bench/distributed_collection.py --from-json docs/benchmarks/distributed_collection.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

from bench.bench_common import cpu_model, parse_task  # noqa: E402

DEFAULT_TASK = "robot_rl/PandaReach-v0:pybullet"


def label(actors: int) -> str:
    return "single process" if actors == 0 else f"{actors} Ray actor{'s' if actors > 1 else ''}"


def env_probe(task: str, steps: int, seed: int = 0) -> dict[str, Any]:
    """Env steps/s of the task alone, uniform random actions (resets included)."""
    import time

    from robot_rl.train.envs import make_env

    env_id, backend = parse_task(task)
    env = make_env(env_id, backend=backend)
    try:
        env.action_space.seed(seed)
        env.reset(seed=seed)
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
        wall = time.perf_counter() - t0
    finally:
        env.close()
    return {"steps": steps, "wall_s": round(wall, 3), "env_steps_per_s": round(steps / wall, 1)}


def run_one(actors: int, seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One training run; its JSON-ready record."""
    import dataclasses

    from robot_rl.algos.sac.config import SACConfig
    from robot_rl.train.config import TrainConfig
    from robot_rl.train.loop import train
    from robot_rl.train.metrics import read_eval_csv

    env_id, backend = parse_task(args.task)
    cfg = TrainConfig(
        env=env_id,
        backend=backend,
        seed=seed,
        total_steps=args.steps,
        learning_starts=args.learning_starts,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        checkpoint_every=0,
        out_dir=work,
        run_name=f"a{actors}-s{seed}",
        progress=False,
        tensorboard=False,
        torch_threads=args.torch_threads,
        actors=actors,
        sync_mode=args.sync_mode,
        weight_push_every=args.push_every,
        actor_block_steps=args.block_steps,
    )
    algo = dataclasses.replace(SACConfig.preset("crossq"), init_alpha=args.init_alpha)
    load_before = os.getloadavg()[0]
    result = train(cfg, "sac", algo)
    updates = max(0, result.steps - args.learning_starts)  # one update per env step after learning starts
    curve = [
        {
            "env_steps": int(row["step"]),
            "wall_s": round(row["wall_s"], 2),
            "success_rate": row.get("success_rate"),
            "mean_return": round(row["mean_return"], 3),
        }
        for row in read_eval_csv(result.run_dir / "eval.csv")
    ]
    record = {
        "actors": actors,
        "seed": seed,
        "env_steps": result.steps,
        "updates": updates,
        "train_wall_s": round(result.train_wall_s, 2),
        "env_steps_per_s": round(result.steps / result.train_wall_s, 2),
        "updates_per_s": round(updates / result.train_wall_s, 2),
        "final_success": result.final_eval.success_rate,
        "final_return": round(result.final_eval.mean_return, 3),
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "curve": curve,
    }
    print(json.dumps({k: v for k, v in record.items() if k != "curve"}), flush=True)
    return record


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per actor count: means over seeds, and the speed-up over the single process of the same seeds."""
    single = {r["seed"]: r for r in runs if r["actors"] == 0}
    out = []
    for actors in sorted({r["actors"] for r in runs}):
        rows = [r for r in runs if r["actors"] == actors]
        ratios = [r["env_steps_per_s"] / single[r["seed"]]["env_steps_per_s"] for r in rows if r["seed"] in single]
        successes = [r["final_success"] for r in rows if r["final_success"] is not None]
        out.append(
            {
                "actors": actors,
                "seeds": len(rows),
                "env_steps_per_s": statistics.fmean(r["env_steps_per_s"] for r in rows),
                "updates_per_s": statistics.fmean(r["updates_per_s"] for r in rows),
                "train_wall_s": statistics.fmean(r["train_wall_s"] for r in rows),
                "speedup_vs_single": statistics.fmean(ratios) if ratios else None,
                "final_success": statistics.fmean(successes) if successes else None,
                "final_return": statistics.fmean(r["final_return"] for r in rows),
            }
        )
    return out


def _f(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def markdown(report: dict[str, Any]) -> str:
    cfg, m = report["config"], report["machine"]
    summary = summarize(report["runs"])
    lines = [
        "# Distributed collection vs the single-process loop",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"{cfg['task']}, CrossQ SAC (init α {cfg['init_alpha']}), {cfg['steps']:,} env steps per run, one update "
        f"per env step after {cfg['learning_starts']:,}; actors: `--sync-mode {cfg['sync_mode']}`, blocks of "
        f"{cfg['block_steps']} steps, weights pushed every {cfg['push_every']} updates; evaluation every "
        f"{cfg['eval_every']:,} env steps on {cfg['eval_episodes']} seeded episodes; {cfg['torch_threads']} torch "
        f"thread(s) in the learner. Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, Python "
        f"{m['python']}, torch {m['torch']}, Ray {m['ray']}. Runs one after another, nothing else running. "
        "How it works: the docstring of `bench/distributed_collection.py`; the design: "
        "[../scale.md](../scale.md).",
        "",
        "| collection | seeds | env steps/s | learner updates/s | vs single process | train wall-clock | "
        "final success | final return |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {label(s['actors'])} | {s['seeds']} | {s['env_steps_per_s']:.1f} | {s['updates_per_s']:.1f} | "
            f"{_f(s['speedup_vs_single'], '.2f')}× | {s['train_wall_s']:.0f} s | {_f(s['final_success'], '.2f')} | "
            f"{s['final_return']:.1f} |"
        )
    lines += ["", "![success vs env steps and vs wall-clock](distributed_collection.png)", ""]
    single = next((s for s in summary if s["actors"] == 0), None)
    best = max((s for s in summary if s["actors"] > 0), key=lambda s: s["env_steps_per_s"], default=None)
    if single is not None and best is not None:
        gain = best["env_steps_per_s"] / single["env_steps_per_s"]
        per_step_ms = 1000.0 / single["env_steps_per_s"]
        env_ms = 1000.0 / report["env_probe"]["env_steps_per_s"]
        ideal = per_step_ms / max(per_step_ms - env_ms, 1e-9)
        lines.append(
            f"Reading: the fastest distributed configuration ({label(best['actors'])}) runs {gain:.2f}× the single "
            f"process's env steps/s. Both loops make one update per env step, so the update rate is the ceiling: "
            f"the single process spends {per_step_ms:.1f} ms per env step, of which the env alone takes "
            f"{env_ms:.2f} ms ({report['env_probe']['env_steps_per_s']:,.0f} env steps/s with random actions), the "
            f"only part actors can take off the learner: the ideal speed-up from any number of actors is "
            f"{ideal:.2f}×. With {m['logical_cpus']} logical CPUs, the actors and the learner also share the cores. "
            "Actors pay off where the env step is slow next to the update (a heavier simulator, rendering, a real "
            "robot's clock) or on other machines; here they show the path works, not a speed-up."
        )
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for r in sorted(report["runs"], key=lambda r: (r["actors"], r["seed"])):
        xs = [p["env_steps"] for p in r["curve"]]
        ws = [p["wall_s"] for p in r["curve"]]
        ys = [p["success_rate"] for p in r["curve"]]
        name = f"{label(r['actors'])}, seed {r['seed']}"
        axes[0].plot(xs, ys, marker="o", ms=3, label=name)
        axes[1].plot(ws, ys, marker="o", ms=3, label=name)
    axes[0].set_xlabel("env steps")
    axes[1].set_xlabel("training wall-clock (s, evaluation excluded)")
    for ax in axes:
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{report['config']['task']}: distributed collection vs single process")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: dict[str, Any], out_dir: Path, write_json: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "distributed_collection.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "distributed_collection.md").write_text(markdown(report))
    plot(report, out_dir / "distributed_collection.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default=DEFAULT_TASK, help="ENV[:BACKEND]")
    ap.add_argument("--actors", type=int, nargs="+", default=[0, 1, 2], help="0 = the single-process loop")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--learning-starts", type=int, default=1_000)
    ap.add_argument("--eval-every", type=int, default=2_500)
    ap.add_argument("--eval-episodes", type=int, default=10)
    ap.add_argument("--init-alpha", type=float, default=0.1)
    ap.add_argument("--sync-mode", choices=["throttle", "lockstep"], default="throttle")
    ap.add_argument("--push-every", type=int, default=100)
    ap.add_argument("--block-steps", type=int, default=100)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--env-probe-steps", type=int, default=3_000, help="env-alone steps measured first")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--work-dir", type=Path, help="the training runs (default: a temporary directory)")
    ap.add_argument("--from-json", type=Path, help="re-render the markdown and plot from this JSON (no training)")
    args = ap.parse_args(argv)
    if args.from_json:
        write(json.loads(args.from_json.read_text()), args.out_dir, write_json=False)
        return 0
    if any(a < 0 for a in args.actors):
        ap.error("--actors must be >= 0")
    import ray
    import torch

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="distributed_collection-"))
    report: dict[str, Any] = {
        "command": "python bench/distributed_collection.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "config": {
            "task": args.task,
            "steps": args.steps,
            "learning_starts": args.learning_starts,
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "init_alpha": args.init_alpha,
            "sync_mode": args.sync_mode,
            "push_every": args.push_every,
            "block_steps": args.block_steps,
            "torch_threads": args.torch_threads,
        },
        "machine": {
            "cpu_model": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ray": ray.__version__,
        },
        "runs": [],
    }
    report["env_probe"] = env_probe(args.task, args.env_probe_steps)
    for seed in args.seeds:
        for actors in args.actors:
            report["runs"].append(run_one(actors, seed, args, work))
            write(report, args.out_dir)  # after every run: a long bench leaves what it measured
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
