"""Environment steps per second of the learners that fine-tune a frozen base, next to plain SAC, on this machine.

Online training on robot_rl/PandaReach-v0 (MuJoCo) through the CLI's driver (`robot_rl.train.loop.train`):
`sac` and `td3` from scratch, and `residual` (TD3) and `residual_sac` on the task's scripted expert as the frozen
base (the base is asked once per env step: its cost is in the figure). Every run takes the same number of env
steps with the same warm-up and one gradient step per env step (UTD 1). The runs are interleaved: `--rounds`
rounds, each running every learner once in an order rotated by one per round, so load from other processes hits
all alike; each learner's steps/s is divided by SAC's in the same round and the median ratio is reported.

The timed figure is the driver's `train_wall_s`: env steps, base proposals, replay writes and gradient updates;
the periodic evaluation and checkpoints are off. Writes <out-dir>/residual_cost.{json,md}.

Usage: .venv/bin/python bench/residual_cost.py [--steps 3000] [--rounds 3] [--out-dir docs/benchmarks]
       .venv/bin/python bench/residual_cost.py --from-json docs/benchmarks/residual_cost.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_common import cpu_model  # noqa: E402
from bench.generative_training_cost import rotated  # noqa: E402
from robot_rl.algos.registry import get_algorithm  # noqa: E402
from robot_rl.train.config import TrainConfig  # noqa: E402
from robot_rl.train.loop import train  # noqa: E402

ENV_ID = "robot_rl/PandaReach-v0"
LEARNERS = ("sac", "td3", "residual", "residual_sac")
"""Table order; the first is the peer every ratio is against."""
PEER = LEARNERS[0]
BASE = "expert"
"""The frozen base of the residual learners (the task's scripted expert: always there, no training needed)."""


def run_one(learner: str, round_index: int, steps: int, runs: Path, torch_threads: int) -> dict[str, Any]:
    """`steps` env steps of `learner` online; the JSON-ready record."""
    cfg = TrainConfig(
        env=ENV_ID,
        total_steps=steps,
        learning_starts=min(1_000, steps // 3),
        seed=round_index,
        eval_every=0,
        eval_episodes=1,
        checkpoint_every=0,
        out_dir=runs,
        run_name=f"{learner}-r{round_index}",
        torch_threads=torch_threads,
        progress=False,
        tensorboard=False,
    )
    algo_cfg = get_algorithm(learner).default_config()
    if learner.startswith("residual"):
        algo_cfg = dataclasses.replace(algo_cfg, base=BASE)
    load_1m = os.getloadavg()[0]
    result = train(cfg, learner, algo_cfg)
    return {
        "round": round_index,
        "learner": learner,
        "env_steps": result.steps,
        "train_wall_s": round(result.train_wall_s, 3),
        "env_steps_per_s": round(result.steps / max(result.train_wall_s, 1e-9), 2),
        "load_avg_1m_before": round(load_1m, 2),
    }


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per learner: median, min and max env steps/s over rounds, and the median of its per-round ratio to SAC's."""
    by_round: dict[int, dict[str, float]] = {}
    for r in records:
        by_round.setdefault(int(r["round"]), {})[r["learner"]] = float(r["env_steps_per_s"])
    out: dict[str, dict[str, Any]] = {}
    for learner in [m for m in LEARNERS if any(r["learner"] == m for r in records)]:
        rates = [float(r["env_steps_per_s"]) for r in records if r["learner"] == learner]
        ratios = [by[learner] / by[PEER] for by in by_round.values() if learner in by and by.get(PEER, 0.0) > 0]
        out[learner] = {
            "rounds": len(rates),
            "env_steps_per_s_median": round(float(np.median(rates)), 2),
            "env_steps_per_s_min": round(min(rates), 2),
            "env_steps_per_s_max": round(max(rates), 2),
            "ratio_to_sac_median": round(float(np.median(ratios)), 3) if ratios else None,
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown; every figure in the prose is computed from the JSON."""
    cfg, m, summary = report["config"], report["machine"], report["summary"]
    loads = [float(r["load_avg_1m_before"]) for r in report["runs"]]
    lines = [
        "# Environment steps per second: fine-tuning learners next to plain SAC",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Online training on {cfg['env']} (MuJoCo), {cfg['steps']:,} env steps per run, UTD 1, batch 256, each "
        f"learner's default config; `residual` and `residual_sac` on the scripted expert as the frozen base. "
        f"{cfg['rounds']} interleaved rounds (every learner once per round, order rotated). Machine: "
        f"{m['cpu_model']}, {m['logical_cpus']} logical CPUs, {m['torch_threads']} torch thread(s); 1-minute load "
        f"average before each run {min(loads):.2f}–{max(loads):.2f}"
        + (" (above the core count at times: other processes competed)." if max(loads) > m["logical_cpus"] else "."),
        "",
        "| learner | env steps/s (median) | min–max | ÷ SAC's (median over rounds) |",
        "|---|---|---|---|",
    ]
    for learner, s in summary.items():
        ratio = "–" if s["ratio_to_sac_median"] is None else f"{s['ratio_to_sac_median']:.2f}"
        lines.append(
            f"| {learner} | {s['env_steps_per_s_median']:.1f} | {s['env_steps_per_s_min']:.1f}–"
            f"{s['env_steps_per_s_max']:.1f} | {ratio} |"
        )
    lines += [
        "",
        "What is timed: the driver's `train_wall_s` (env steps, the base's proposals, replay writes, gradient "
        "updates, n-step gathering); evaluation and checkpoints are off. Per-run records are in the JSON.",
        "",
    ]
    return "\n".join(lines)


def write(report: dict[str, Any], out_dir: Path, write_json: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "residual_cost.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "residual_cost.md").write_text(markdown(report))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3000, help="env steps per run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (every learner once)")
    ap.add_argument("--torch-threads", type=int, default=1, help="learner intra-op threads (0 = one per core)")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--from-json", type=Path, help="re-render residual_cost.md from this JSON (no training)")
    args = ap.parse_args(argv)
    if args.from_json:
        write(json.loads(args.from_json.read_text()), args.out_dir, write_json=False)
        return 0
    if min(args.steps, args.rounds) < 1 or args.torch_threads < 0:
        ap.error("--steps and --rounds must be >= 1, --torch-threads >= 0")
    command = (".venv/bin/python bench/residual_cost.py " + shlex.join(argv or sys.argv[1:])).strip()
    records = []
    with tempfile.TemporaryDirectory(prefix="residual-cost-") as runs:
        for rnd in range(args.rounds):
            for learner in rotated(LEARNERS, rnd):
                rec = run_one(learner, rnd, args.steps, Path(runs), args.torch_threads)
                records.append(rec)
                print(f"round {rnd + 1}/{args.rounds} {learner}: {rec['env_steps_per_s']:.1f} env steps/s", flush=True)
    report = {
        "command": command,
        "config": {"env": ENV_ID, "steps": args.steps, "rounds": args.rounds, "base": BASE, "learners": LEARNERS},
        "machine": {
            "cpu_model": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "runs": records,
        "summary": summarize(records),
    }
    write(report, args.out_dir)
    print(f"wrote {args.out_dir / 'residual_cost.json'} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
