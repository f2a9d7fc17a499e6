"""How much room does a frozen base leave a fine-tuner? Its success on robot_rl/PandaPush-v0 under the changes a
residual learner and DSRL make, on the same seeded episodes, before any learning.

The base is `bench/residual_push.py`'s (the same scripted-expert demonstrations, the same flow recipe). Every
condition runs the same `--eval-episodes` seeded episodes with a freshly seeded base:

1. **Sampler noise** (`noise × s`): the flow sampler's standard-normal input scaled by s (0 = every chunk from zero
   noise). This is DSRL's lever: it chooses that noise. If the base's success does not depend on it, no choice of
   noise can raise it much.
2. **A constant correction** (`offset m`): executed = clip(a_base + m·d, −1, 1) on the normalized action, d a random
   unit direction drawn once per episode: what a residual that has drifted to a small, wrong, state-independent
   correction does.
3. **Per-step exploration noise** (`iid σ`): executed = clip(a_base + σ·ε_t, −1, 1), ε_t standard normal per step:
   what a residual learner's exploration does to the episodes it learns from.
4. **How the base fails**: per episode, the puck's closest approach to the goal and its final distance; failures
   split into reached-then-lost (within the success radius at some step, not at the end), near misses (ended
   within twice the radius) and far misses.

Reading: the spread over noise scales against the episodes' standard error, and the cost of the smallest
correction that loses success, decide whether a learner has a lever (DSRL) and how large a correction can be
before the data it collects holds no successes (the residual learners).

Writes <out-dir>/residual_sensitivity.{json,md}.

Usage: .venv/bin/python bench/residual_sensitivity.py [--work-dir DIR] [--eval-episodes 40]
       .venv/bin/python bench/residual_sensitivity.py --from-json docs/benchmarks/residual_sensitivity.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from bench.bench_common import cpu_model  # noqa: E402
from robot_rl.algos.residual.config import ResidualConfig  # noqa: E402

DEFAULT_RESIDUAL_SCALE = ResidualConfig.residual_scale
"""The residual learners' default largest correction (normalized units), set against the measured tolerance."""


def condition_name(kind: str, value: float) -> str:
    return {"noise": f"noise × {value:g}", "offset": f"offset {value:g}", "iid": f"iid σ {value:g}"}[kind]


def episode_outcome(distances_m: Sequence[float], success: bool, radius_m: float) -> str:
    """`success`, `reached-then-lost`, `near miss` (ended within 2 radii) or `far miss`."""
    if success:
        return "success"
    if min(distances_m) < radius_m:
        return "reached-then-lost"
    return "near miss" if distances_m[-1] < 2 * radius_m else "far miss"


def se_points(p: float, n: int) -> float:
    """Standard error of a success rate over n episodes, in points."""
    return 100.0 * math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))


def run_condition(
    env: Any, spec_action: Any, policy: Any, kind: str, value: float, episodes: int, eval_seed: int
) -> dict[str, Any]:
    """Success rate and per-episode distances of the base under one condition."""
    from robot_rl.train.envs import episode_seed
    from robot_rl.train.policy_actor import PolicyActor

    actor = PolicyActor(policy, seed=eval_seed, noise_scale=value if kind == "noise" else 1.0)
    successes, closest, final = [], [], []
    for ep in range(episodes):
        rng = np.random.default_rng([eval_seed, ep])
        direction = rng.standard_normal(spec_action.dim)
        direction /= np.linalg.norm(direction)
        obs, _ = env.reset(seed=episode_seed(eval_seed, ep))
        obs = np.asarray(obs, np.float32)
        actor.reset(obs)
        dists: list[float] = []
        done = False
        info: dict[str, Any] = {}
        while not done:
            action = actor.act(obs)
            if kind in ("offset", "iid"):
                a = spec_action.to_normalized(action)
                a = a + (value * direction if kind == "offset" else value * rng.standard_normal(a.shape))
                action = spec_action.to_physical(np.clip(a, -1.0, 1.0)).astype(np.float32)
            obs, _, term, trunc, info = env.step(action)
            obs = np.asarray(obs, np.float32)
            dists.append(float(info["distance_m"]))
            done = bool(term or trunc)
        successes.append(bool(info.get("is_success", False)))
        closest.append(min(dists))
        final.append(dists[-1])
    return {
        "kind": kind,
        "value": value,
        "success_rate": float(np.mean(successes)),
        "success": successes,
        "closest_m": [round(d, 4) for d in closest],
        "final_m": [round(d, 4) for d in final],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import bench.residual_push as rp
    from robot_rl.train.envs import make_env, policy_spec_for
    from robot_rl.train.from_run import load_run_policy

    torch.set_num_threads(args.torch_threads)
    demos, base = rp.seed0_flow_base(args.work_dir, args.expert_episodes, args.flow_updates)
    policy = load_run_policy(Path(base["run_dir"])).policy
    env = make_env(rp.ENV_ID)
    radius_m = float(env.unwrapped.task.success_distance_m)
    action = policy_spec_for(env, rp.ENV_ID).action
    conditions = (
        [("noise", s) for s in args.noise_scales]
        + [("offset", m) for m in args.offsets]
        + [("iid", s) for s in args.iid]
    )
    results = []
    try:
        for kind, value in conditions:
            t0 = time.perf_counter()
            res = run_condition(env, action, policy, kind, value, args.eval_episodes, args.eval_seed)
            results.append(res)
            print(f"{condition_name(kind, value)}: {res['success_rate']:.3f} ({time.perf_counter() - t0:.0f} s)")
    finally:
        env.close()
    return {
        "command": "python bench/residual_sensitivity.py "
        + shlex.join(args.argv if args.argv is not None else sys.argv[1:]),
        "config": {
            "env": rp.ENV_ID,
            "expert_episodes": args.expert_episodes,
            "flow_updates": args.flow_updates,
            "base_final_success": rp.final_success(base["summary"]),
            "demo_success_rate": demos["success_rate"],
            "eval_episodes": args.eval_episodes,
            "eval_seed": args.eval_seed,
            "success_radius_m": radius_m,
        },
        "machine": {"cpu_model": cpu_model(), "logical_cpus": os.cpu_count()},
        "conditions": results,
    }


def breakdown(res: dict[str, Any], radius_m: float) -> dict[str, int]:
    out = {"success": 0, "reached-then-lost": 0, "near miss": 0, "far miss": 0}
    for ok, closest, final in zip(res["success"], res["closest_m"], res["final_m"], strict=True):
        out[episode_outcome([closest, final], ok, radius_m)] += 1
    return out


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    n = cfg["eval_episodes"]
    conds = report["conditions"]
    base = next(c for c in conds if c["kind"] == "noise" and c["value"] == 1.0)
    p0 = base["success_rate"]
    lines = [
        "# How much room does the PandaPush base leave a fine-tuner?",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"{cfg['env']} (sparse reward). Base: the flow policy of `bench/residual_push.py` from "
        f"{cfg['expert_episodes']} scripted-expert episodes ({cfg['flow_updates']:,} updates; "
        f"{cfg['base_final_success']:.0%} in its own 30-episode evaluation). Every row: the same {n} seeded "
        f"episodes, a freshly seeded base; actions in normalized units. Machine: {report['machine']['cpu_model']}, "
        f"{report['machine']['logical_cpus']} logical CPUs. How it works: the docstring of "
        "`bench/residual_sensitivity.py`.",
        "",
        "| condition | success | vs the base (points ± 1 SE) | median final distance |",
        "|---|---|---|---|",
    ]
    for c in conds:
        p = c["success_rate"]
        diff = "–" if c is base else f"{100 * (p - p0):+.1f} ± {math.hypot(se_points(p, n), se_points(p0, n)):.1f}"
        lines.append(
            f"| {condition_name(c['kind'], c['value'])}{' (the base)' if c is base else ''} | {p:.0%} | {diff} | "
            f"{100 * statistics.median(c['final_m']):.1f} cm |"
        )
    b = breakdown(base, cfg["success_radius_m"])
    fails = n - b["success"]
    closest_fail = [d for d, ok in zip(base["closest_m"], base["success"], strict=True) if not ok]
    lines += [
        "",
        f"How the base fails ({fails} of {n} episodes; success radius {100 * cfg['success_radius_m']:.0f} cm): "
        f"{b['reached-then-lost']} reached the goal and lost it, {b['near miss']} ended within "
        f"{200 * cfg['success_radius_m']:.0f} cm (near misses), {b['far miss']} further away"
        + (
            f"; median closest approach of the failures {100 * statistics.median(closest_fail):.1f} cm."
            if fails
            else "."
        ),
        "",
    ]
    noise = [c for c in conds if c["kind"] == "noise"]
    spread = 100 * (max(c["success_rate"] for c in noise) - min(c["success_rate"] for c in noise))
    se = math.hypot(se_points(p0, n), se_points(p0, n))
    lines.append(
        f"Reading: over sampler-noise scales {', '.join(format(c['value'], 'g') for c in noise)} success spans "
        f"{spread:.1f} points, against {se:.1f} points for one standard error of a difference at the base's rate: "
        + (
            "no noise scale moves success by more than two standard errors: within what these episodes resolve, "
            "the base's success does not depend on its noise, so choosing the noise (DSRL) has nothing to work with."
            if spread <= 2 * se
            else "the noise matters, so choosing it (DSRL) has something to work with."
        )
    )
    for kind, what in (("offset", "A constant correction"), ("iid", "Per-step noise")):
        rows = sorted((c for c in conds if c["kind"] == kind), key=lambda c: c["value"])
        hurt = [c for c in rows if 100 * (p0 - c["success_rate"]) > 2 * math.hypot(se_points(c["success_rate"], n),
                                                                                    se_points(p0, n))]  # fmt: skip
        if rows:
            lines.append(
                f"{what} of size {hurt[0]['value']:g} already costs {100 * (p0 - hurt[0]['success_rate']):.0f} "
                "points (more than two standard errors)."
                if hurt
                else f"{what} up to {rows[-1]['value']:g} costs no more than two standard errors."
            )
        if kind == "offset" and hurt:
            lines.append(
                f"The residual learners' largest correction by default (`residual_scale` {DEFAULT_RESIDUAL_SCALE:g}) "
                f"is {DEFAULT_RESIDUAL_SCALE / hurt[0]['value']:.0f}× that: a residual whose critic does not yet "
                "point the right way loses the base's successes, and with them the data it would learn from."
            )
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out_dir: Path, write_json: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "residual_sensitivity.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "residual_sensitivity.md").write_text(markdown(report))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expert-episodes", type=int, default=10)
    ap.add_argument("--flow-updates", type=int, default=6_000, help="flow base: offline updates")
    ap.add_argument("--noise-scales", type=float, nargs="+", default=[1.0, 0.5, 0.0])
    ap.add_argument("--offsets", type=float, nargs="+", default=[0.005, 0.01, 0.02, 0.05])
    ap.add_argument("--iid", type=float, nargs="+", default=[0.01, 0.05])
    ap.add_argument("--eval-episodes", type=int, default=40)
    ap.add_argument("--eval-seed", type=int, default=999)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--work-dir", type=Path, help="the dataset and the base (default: a temporary directory)")
    ap.add_argument("--from-json", type=Path, help="re-render the markdown from this JSON (no measuring)")
    args = ap.parse_args(argv)
    args.argv = argv
    if args.from_json:
        write(json.loads(args.from_json.read_text()), args.out_dir, write_json=False)
        return 0
    if 1.0 not in args.noise_scales:
        ap.error("--noise-scales must include 1 (the base as it samples)")
    if min([*args.noise_scales, *args.offsets, *args.iid]) < 0:
        ap.error("scales, offsets and noise must be >= 0")
    args.work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="residual_sensitivity-"))
    report = measure(args)
    write(report, args.out_dir)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
