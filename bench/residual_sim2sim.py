"""Sim-to-sim fine-tuning: a reach policy trained in MuJoCo, fine-tuned with residual RL in the PyBullet twin.

Per seed: CrossQ SAC trains on robot_rl/PandaReach-v0 in MuJoCo (`--base-steps`), its bundle is evaluated in both
engines (before); a residual learner (`--learner`, on that run as the frozen base) trains in PyBullet
(`--residual-steps`), and the composite bundle (base + residual in one verified graph) is evaluated in both engines
(after). Every evaluation uses the same seeded episodes in both engines. Success over seeds is summarized as the
IQM with a 95% bootstrap interval. Each finished seed is written at once, so an interrupted run keeps what it
measured; shards (`--seeds`, separate `--out-dir`) are combined with `--merge`.

Writes <out-dir>/residual_sim2sim.{json,md}.

Usage: .venv/bin/python bench/residual_sim2sim.py [--seeds 0 1 2] [--base-steps 20000] [--residual-steps 10000]
       .venv/bin/python bench/residual_sim2sim.py --merge /tmp/a/residual_sim2sim.json /tmp/b/residual_sim2sim.json
       .venv/bin/python bench/residual_sim2sim.py --from-json docs/benchmarks/residual_sim2sim.json   # markdown only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

from bench.bench_common import bootstrap_ci, cpu_model, iqm, render_or_merge  # noqa: E402
from robot_rl.algos.registry import get_algorithm  # noqa: E402
from robot_rl.algos.sac.config import SACConfig  # noqa: E402
from robot_rl.cli import eval_bundle, export_run  # noqa: E402
from robot_rl.train.config import TrainConfig  # noqa: E402
from robot_rl.train.loop import train  # noqa: E402

ENV_ID = "robot_rl/PandaReach-v0"
BASE_ENGINE, TUNE_ENGINE = "mujoco", "pybullet"
STAGES = ("before", "after")
"""`before`: the MuJoCo-trained base's bundle; `after`: the composite fine-tuned in PyBullet."""


def evaluate_both(bundle: Path, episodes: int, seed: int) -> dict[str, dict[str, float]]:
    """Success and final distance of `bundle` in both engines on the same seeded episodes."""
    out = {}
    for engine in (BASE_ENGINE, TUNE_ENGINE):
        res, _ = eval_bundle(bundle, ENV_ID, episodes, seed, engine)
        out[engine] = {
            "success_rate": round(res.success_rate, 3),
            "final_distance_m": round(res.mean_final_distance_m, 4),
            "mean_return": round(res.mean_return, 2),
        }
    return out


def run_seed(seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Base in MuJoCo → residual in PyBullet → both bundles in both engines; the JSON-ready record."""
    common = {"env": ENV_ID, "seed": seed, "eval_every": 0, "eval_episodes": 1, "checkpoint_every": 0}
    common |= {"out_dir": work, "progress": False, "tensorboard": False}
    base_cfg = TrainConfig(
        **common, backend=BASE_ENGINE, total_steps=args.base_steps, run_name=f"base-s{seed}", learning_starts=1_000
    )
    sac = SACConfig.preset("crossq")
    t0 = time.perf_counter()
    base = train(base_cfg, "sac", dataclasses.replace(sac, init_alpha=args.init_alpha))
    base_wall = time.perf_counter() - t0
    export_run(base.run_dir, work / f"bundle-base-s{seed}", overwrite=True)
    eval_seed = 10_000 + seed
    before = evaluate_both(work / f"bundle-base-s{seed}", args.episodes, eval_seed)

    tune_cfg = TrainConfig(
        **common,
        backend=TUNE_ENGINE,
        total_steps=args.residual_steps,
        run_name=f"residual-s{seed}",
        learning_starts=args.learning_starts,
    )
    algo = dataclasses.replace(
        get_algorithm(args.learner).default_config(), base=str(base.run_dir), residual_scale=args.residual_scale
    )
    t0 = time.perf_counter()
    tuned = train(tune_cfg, args.learner, algo)
    tune_wall = time.perf_counter() - t0
    export_run(tuned.run_dir, work / f"bundle-residual-s{seed}", overwrite=True)
    after = evaluate_both(work / f"bundle-residual-s{seed}", args.episodes, eval_seed)
    record = {
        "seed": seed,
        "base_train_wall_s": round(base_wall, 1),
        "residual_train_wall_s": round(tune_wall, 1),
        "before": before,
        "after": after,
    }
    print(json.dumps(record), flush=True)
    return record


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per stage and engine: success over seeds (IQM, 95% bootstrap interval, min, max); the PyBullet gain."""
    out: dict[str, Any] = {}
    for stage in STAGES:
        for engine in (BASE_ENGINE, TUNE_ENGINE):
            values = [r[stage][engine]["success_rate"] for r in runs]
            lo, hi = bootstrap_ci(values)
            out[f"{stage}/{engine}"] = {
                "iqm": round(iqm(values), 3),
                "ci95": [round(lo, 3), round(hi, 3)],
                "min": min(values),
                "max": max(values),
                "final_distance_m_mean": round(sum(r[stage][engine]["final_distance_m"] for r in runs) / len(runs), 4),
            }
    gains = [r["after"][TUNE_ENGINE]["success_rate"] - r["before"][TUNE_ENGINE]["success_rate"] for r in runs]
    lo, hi = bootstrap_ci(gains)
    out["gain/pybullet"] = {"iqm": round(iqm(gains), 3), "ci95": [round(lo, 3), round(hi, 3)], "per_seed": gains}
    kept = [r["after"][BASE_ENGINE]["success_rate"] - r["before"][BASE_ENGINE]["success_rate"] for r in runs]
    out["change/mujoco"] = {"iqm": round(iqm(kept), 3), "per_seed": kept}
    return out


def reading(data: dict[str, Any]) -> list[str]:
    """Sentences computed from the summary: the gap before, how much the residual closed, MuJoCo after."""
    s = data["summary"]
    b_mj, b_pb = s[f"before/{BASE_ENGINE}"]["iqm"], s[f"before/{TUNE_ENGINE}"]["iqm"]
    a_mj, a_pb = s[f"after/{BASE_ENGINE}"]["iqm"], s[f"after/{TUNE_ENGINE}"]["iqm"]
    gap = b_mj - b_pb
    gain = s["gain/pybullet"]
    lines = [
        f"* Before: the MuJoCo-trained base succeeds {b_mj:.0%} in MuJoCo and {b_pb:.0%} in PyBullet "
        f"(a gap of {100 * gap:.0f} points, IQM over {len(data['runs'])} seed(s)).",
        f"* After {data['residual_steps']} residual steps in PyBullet: {a_pb:.0%} in PyBullet, a gain of "
        f"{100 * gain['iqm']:+.0f} points (95% interval {100 * gain['ci95'][0]:+.0f} to {100 * gain['ci95'][1]:+.0f})"
        + (f", {min(1.0, max(0.0, gain['iqm'] / gap)):.0%} of the gap closed." if gap > 0 else "."),
        f"* MuJoCo after fine-tuning: {a_mj:.0%} ({100 * (a_mj - b_mj):+.0f} points against the base): "
        + ("it did not collapse." if a_mj >= b_mj - 0.1 else "**it lost more than 10 points**."),
    ]
    return lines


def write_report(data: dict[str, Any], out_dir: Path, write_json: bool = True) -> None:
    """JSON (unless re-rendering) + markdown under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "residual_sim2sim.json").write_text(json.dumps(data, indent=2) + "\n")
    runs = data["runs"]
    lines = [
        "# Sim-to-sim fine-tuning: a MuJoCo reach policy, residual RL in PyBullet",
        "",
        "```",
        data["command"],
        "```",
        "",
        f"{ENV_ID}: CrossQ SAC trained {data['base_steps']} steps in MuJoCo is the frozen base; `{data['learner']}` "
        f"(residual scale {data['residual_scale']}) fine-tunes it for {data['residual_steps']} steps in PyBullet; "
        f"each bundle is evaluated on the same {data['episodes']} seeded episodes in both engines. "
        f"Seeds: {', '.join(str(r['seed']) for r in runs)}. Machine: {data['machine']}.",
        "",
    ]
    if not runs:
        lines.append("No seed finished.")
    else:
        s = data["summary"]
        lines += [
            "| bundle | evaluated in | success IQM [95% CI] | min–max | mean final distance |",
            "|---|---|---|---|---|",
        ]
        names = {"before": "base (MuJoCo-trained)", "after": "base + residual (tuned in PyBullet)"}
        for stage in STAGES:
            for engine in (BASE_ENGINE, TUNE_ENGINE):
                v = s[f"{stage}/{engine}"]
                lines.append(
                    f"| {names[stage]} | {engine} | {v['iqm']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}] | "
                    f"{v['min']:.2f}–{v['max']:.2f} | {100 * v['final_distance_m_mean']:.1f} cm |"
                )
        lines += ["", "Reading:", "", *reading(data), ""]
        lines += [
            "Per seed (success before → after): "
            + "; ".join(
                f"seed {r['seed']}: PyBullet {r['before'][TUNE_ENGINE]['success_rate']:.2f} → "
                f"{r['after'][TUNE_ENGINE]['success_rate']:.2f}, MuJoCo {r['before'][BASE_ENGINE]['success_rate']:.2f}"
                f" → {r['after'][BASE_ENGINE]['success_rate']:.2f} (training {r['base_train_wall_s']:.0f} s + "
                f"{r['residual_train_wall_s']:.0f} s)"
                for r in runs
            ),
            "",
        ]
    (out_dir / "residual_sim2sim.md").write_text("\n".join(lines))


def merge(paths: Sequence[Path]) -> dict[str, Any]:
    """Shards with the same settings → one result (a seed present twice is an error)."""
    shards = [json.loads(p.read_text()) for p in paths]
    keys = ("base_steps", "residual_steps", "learner", "residual_scale", "episodes")
    for sh in shards[1:]:
        diff = [k for k in keys if sh[k] != shards[0][k]]
        if diff:
            raise SystemExit(f"shards differ in {diff}: they measured different things")
    runs = sorted((r for sh in shards for r in sh["runs"]), key=lambda r: r["seed"])
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"a seed appears in more than one shard: {seeds}")
    data = {**shards[0], "runs": runs, "summary": summarize(runs)}
    data["command"] = (
        "\n".join(sh["command"] for sh in shards)
        + "\n"
        + "python bench/residual_sim2sim.py --merge "
        + (" ".join(str(p) for p in paths))
    )
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--base-steps", type=int, default=20_000)
    ap.add_argument("--residual-steps", type=int, default=10_000)
    ap.add_argument("--learning-starts", type=int, default=1_000)
    ap.add_argument("--learner", default="residual_sac", choices=["residual", "residual_sac"])
    ap.add_argument("--residual-scale", type=float, default=0.2)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--init-alpha", type=float, default=0.1, help="the base's SAC temperature (as bench/sim2sim.py)")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--work-dir", type=Path, help="keep runs and bundles here (default: a temporary directory)")
    ap.add_argument("--merge", type=Path, nargs="+", help="combine these shard JSONs into --out-dir")
    ap.add_argument("--from-json", type=Path, help="re-render the markdown from this JSON (no training)")
    args = ap.parse_args(argv)
    if render_or_merge(args.from_json, args.merge, args.out_dir, write_report, merge):
        return 0
    data: dict[str, Any] = {
        "command": "python bench/residual_sim2sim.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "env_id": ENV_ID,
        "base_steps": args.base_steps,
        "residual_steps": args.residual_steps,
        "learner": args.learner,
        "residual_scale": args.residual_scale,
        "episodes": args.episodes,
        "machine": f"{cpu_model()}, {os.cpu_count()} logical CPUs",
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="residual-sim2sim-") as tmp:
        work = args.work_dir or Path(tmp)
        for seed in args.seeds:
            data["runs"].append(run_seed(seed, args, work))
            data["summary"] = summarize(data["runs"])
            write_report(data, args.out_dir)  # after every seed: an interrupted run keeps what it measured
    print(f"wrote {args.out_dir / 'residual_sim2sim.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
