"""Safe exploration: SAC on the reach-around pillar task with and without the CBF filter, equal env steps.

Both conditions train through `robot-rl train --safety` (`robot_rl/train/safe_env.py`): `limits` is the robot's own
chain (joint limits and rates, what every deployment has), `cbf` adds the `cbf` link with the pillar as a capsule
(the same barriers as bench/cbf_obstacle.py). A constraint violation is an episode that ended on the pillar (the
task's own collision check, `terminated` without success); counted over every training episode, random warm-up
included. The final evaluation (the deterministic policy, unfiltered) is reported beside it.

Usage: .venv/bin/python bench/safe_exploration.py [--seeds 0 1] [--steps 10000] [--out-dir docs/benchmarks]
           [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import yaml  # noqa: E402

from bench.bench_common import cpu_model  # noqa: E402
from bench.cbf_obstacle import MARGIN_M, pillar_capsule_m  # noqa: E402
from robot_rl.algos.sac.config import SACConfig  # noqa: E402
from robot_rl.safety.config import DEFAULT_LINKS  # noqa: E402
from robot_rl.train.config import TrainConfig  # noqa: E402
from robot_rl.train.loop import train  # noqa: E402
from sim.tasks.reach_around import GRIPPER_RADIUS_M  # noqa: E402

NAME = "safe_exploration"
ENV_ID = "robot_rl/PandaReachAround-v0"
CONDITIONS = ("limits", "cbf")


def cbf_yaml(path: Path) -> Path:
    """A policy-node parameter file with the cbf link guarding the pillar (limits from the robot's manifest)."""
    links = list(DEFAULT_LINKS)
    links.insert(links.index("joint_limits"), "cbf")
    cbf = {"capsules_m": pillar_capsule_m(), "point_radius_m": GRIPPER_RADIUS_M, "margin_m": MARGIN_M}
    path.write_text(yaml.safe_dump({"/**/policy_node": {"ros__parameters": {"safety": {"links": links, "cbf": cbf}}}}))
    return path


def run_one(condition: str, seed: int, steps: int, work: Path) -> dict[str, Any]:
    source = "manifest" if condition == "limits" else str(cbf_yaml(work / "cbf.yaml"))
    name = f"{condition}-s{seed}"
    shutil.rmtree(work / name, ignore_errors=True)  # left by an attempt stopped before its record
    cfg = TrainConfig(
        env=ENV_ID, backend="mujoco", seed=seed, total_steps=steps, learning_starts=1_000, eval_every=0,
        eval_episodes=20, checkpoint_every=0, out_dir=work, run_name=name, progress=False, tensorboard=False,
        safety=source,
    )  # fmt: skip
    t0 = time.perf_counter()
    result = train(cfg, "sac", SACConfig())
    counts = json.loads((work / name / "safety.json").read_text())
    final = result.final_eval
    record = {
        "condition": condition,
        "seed": seed,
        "steps": counts["steps"],
        "episodes": counts["episodes"],
        "failed_episodes": counts["failed_episodes"],
        "held_steps": counts["held_steps"],
        "changed_steps": counts["changed_steps"],
        "counters": counts["counters"],
        "final_success_rate": None if final is None else round(float(final.success_rate), 3),
        "final_return": None if final is None else round(float(final.mean_return), 2),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(record), flush=True)
    return record


def write_report(data: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{NAME}.json").write_text(json.dumps(data, indent=1) + "\n")
    runs = data["runs"]
    loads = data["machine"]["load_avg_1m"]
    lines = [
        "# Safe exploration: SAC with and without the CBF filter on the pillar task",
        "",
        "```",
        data["command"],
        "```",
        "",
        f"`{ENV_ID}` (MuJoCo), SAC (classic recipe), {data['steps']:,} env steps per run, the same seeds in both "
        "conditions. A constraint violation = a training episode that ended on the pillar (the task's own collision "
        "check). Final success: 20 seeded evaluation episodes of the deterministic policy, unfiltered. Machine: "
        f"{data['machine']['cpu_model']}, load {min(loads):.1f}–{max(loads):.1f} on "
        f"{data['machine']['cpus']} CPUs.",
        "",
        "| condition | seed | training episodes | ended on the pillar | held steps | changed steps "
        "| joint-limit cuts by the final clamp | final success |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["seed"], CONDITIONS.index(r["condition"]))):
        final = "–" if r["final_success_rate"] is None else f"{r['final_success_rate']:.0%}"
        cuts = r["counters"].get("position_limit", 0)
        lines.append(
            f"| {r['condition']} | {r['seed']} | {r['episodes']} | {r['failed_episodes']} | {r['held_steps']} | "
            f"{r['changed_steps']} | {cuts} | {final} |"
        )
    totals = {c: sum(r["failed_episodes"] for r in runs if r["condition"] == c) for c in CONDITIONS}
    episodes = {c: sum(r["episodes"] for r in runs if r["condition"] == c) for c in CONDITIONS}
    lines += [
        "",
        "Reading: episodes that ended on the pillar during training, over all seeds: "
        + "; ".join(f"{c} {totals[c]} of {episodes[c]}" for c in CONDITIONS)
        + ".",
        "",
        "Held steps by reason, over all seeds: "
        + "; ".join(
            f"{c}: "
            + (
                ", ".join(
                    f"{k} {sum(r['counters'].get(k, 0) for r in runs if r['condition'] == c)}"
                    for k in sorted({k for r in runs if r["condition"] == c for k in r["counters"]})
                    if k.startswith("cbf_") or k in ("observation_watchdog", "command_watchdog", "plausibility")
                )
                or "none"
            )
            for c in CONDITIONS
        )
        + " (a `cbf_timeout` is a solve over the filter's `time_budget_s`: the chain holds that step).",
        "",
        "Joint-limit cuts by the final clamp: steps on which the `joint_limits` clamp behind the filter still changed "
        "the command for a position limit (with `cbf`, a cut can undo an obstacle correction; the filter's joint rows "
        "use the clamp's own braking rule, so it should find nothing to cut).",
    ]
    (out_dir / f"{NAME}.md").write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--work-dir", type=Path)
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    ap.add_argument(
        "--merge", type=Path, nargs="+", help="combine these shard JSONs (runs side by side) into <out-dir>"
    )
    args = ap.parse_args(argv)
    if args.merge:
        parts = [json.loads(p.read_text()) for p in args.merge]
        merged = dict(parts[0])
        merged["runs"] = [r for part in parts for r in part["runs"]]
        merged["command"] = "\n".join(
            [p["command"] for p in parts]
            + [".venv/bin/python bench/safe_exploration.py --merge " + shlex.join(map(str, args.merge))]
        )
        loads = [x for p in parts for x in p["machine"]["load_avg_1m"]]
        merged["machine"] = {**parts[0]["machine"], "load_avg_1m": [min(loads), max(loads)]}
        write_report(merged, args.out_dir)
        return 0
    command = ".venv/bin/python bench/safe_exploration.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="safe-exploration-"))
    work.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    runs = []
    for seed in args.seeds:
        for condition in args.conditions:
            runs.append(run_one(condition, seed, args.steps, work))
            data = {
                "command": command,
                "steps": args.steps,
                "machine": {
                    "cpu_model": cpu_model(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
                },
                "runs": runs,
            }
            write_report(data, args.out_dir)
    print(f"wrote {args.out_dir / (NAME + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
