"""Sim-to-sim transfer table: a SAC reach policy trained in each engine, evaluated in both.

For each training backend (MuJoCo, PyBullet): train CrossQ SAC on robot_rl/PandaReach-v0 with the same seed and
budget, export the ONNX bundle (parity-checked), then evaluate the bundle on the same seeded episodes in both
engines. The diagonal is in-simulator performance; the off-diagonal is transfer. Writes
docs/benchmarks/sim2sim.{json,md}.

Usage: .venv/bin/python bench/sim2sim.py [--steps 20000] [--episodes 50] [--seed 0] [--out-dir docs/benchmarks]
       .venv/bin/python bench/sim2sim.py --from-json docs/benchmarks/sim2sim.json   # markdown only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

from robot_rl.algos.sac.config import SACConfig  # noqa: E402
from robot_rl.cli import eval_bundle, export_run  # noqa: E402
from robot_rl.train.config import TrainConfig  # noqa: E402
from robot_rl.train.loop import train  # noqa: E402

BACKENDS = ("mujoco", "pybullet")


def run(env_id: str, steps: int, episodes: int, seed: int, work: Path, init_alpha: float) -> dict[str, object]:
    """Train in each backend, evaluate each bundle in both; returns the JSON-ready result."""
    pairs: dict[str, dict[str, float]] = {}
    training: dict[str, dict[str, float]] = {}
    for train_backend in BACKENDS:
        cfg = TrainConfig(
            env=env_id,
            backend=train_backend,
            total_steps=steps,
            seed=seed,
            learning_starts=1_000,
            eval_every=0,
            eval_episodes=10,
            checkpoint_every=0,
            out_dir=work,
            run_name=f"sim2sim-{train_backend}",
            progress=False,
        )
        algo = SACConfig.preset("crossq")
        algo = type(algo)(**{**algo.__dict__, "init_alpha": init_alpha})
        t0 = time.perf_counter()
        result = train(cfg, "sac", algo)
        training[train_backend] = {"train_wall_s": round(time.perf_counter() - t0, 1), "steps": result.steps}
        bundle = work / f"bundle-{train_backend}"
        export_run(result.run_dir, bundle, overwrite=True)
        for eval_backend in BACKENDS:
            res, _ = eval_bundle(bundle, env_id, episodes, seed + 1000, eval_backend)
            pairs[f"{train_backend}->{eval_backend}"] = {
                "success_rate": round(res.success_rate, 3),
                "final_distance_m": round(res.mean_final_distance_m, 4),
                "mean_return": round(res.mean_return, 2),
                "episodes": episodes,
            }
            print(
                f"{train_backend:>8} → {eval_backend:<8} success {res.success_rate:.2f}  "
                f"final distance {100 * res.mean_final_distance_m:.1f} cm",
                flush=True,
            )
    return {
        "env_id": env_id,
        "train_steps": steps,
        "seed": seed,
        "init_alpha": init_alpha,
        "pairs": pairs,
        "training": training,
    }


def write_report(data: dict[str, object], out_dir: Path, command: str, write_json: bool = True) -> None:
    """JSON (unless re-rendering from it) + markdown table under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "sim2sim.json").write_text(json.dumps(data, indent=2) + "\n")
    pairs = data["pairs"]
    assert isinstance(pairs, dict)
    lines = [
        "# Sim-to-sim transfer: SAC reach trained in one engine, evaluated in both",
        "",
        f"`{command}` — {data['env_id']}, CrossQ SAC, {data['train_steps']} steps per engine, seed {data['seed']}, "
        f"{next(iter(pairs.values()))['episodes']} seeded evaluation episodes (same targets in both engines).",
        f"Machine: {data['machine']}.",
        "",
        "| trained in → evaluated in | success rate | mean final distance |",
        "|---|---|---|",
    ]
    for key, v in pairs.items():
        a, b = key.split("->")
        lines.append(f"| {a} → {b} | {v['success_rate']:.2f} | {100 * v['final_distance_m']:.1f} cm |")
    lines += ["", "How to read it: [../sim2sim.md](../sim2sim.md).", "", *reading(data), ""]
    (out_dir / "sim2sim.md").write_text("\n".join(lines))


def transfer_gap(pairs: dict[str, dict[str, float]], trained: str, other: str) -> dict[str, float | bool]:
    """Success lost when a policy trained in `trained` runs in `other`, and whether it is more than noise.

    Rule: a drop counts as a gap when it exceeds two standard errors of the difference of two binomial success
    rates over the evaluation episodes (sqrt(p1(1-p1)/n + p2(1-p2)/n)); a smaller drop is within sampling noise.
    """
    home, away = pairs[f"{trained}->{trained}"], pairs[f"{trained}->{other}"]
    p1, p2, n = home["success_rate"], away["success_rate"], home["episodes"]
    two_se = 2 * math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)
    drop = p1 - p2
    return {"home": p1, "away": p2, "drop": drop, "two_se": two_se, "significant": drop > two_se}


def reading(data: dict[str, object]) -> list[str]:
    """The interpretation, computed from the table (the stated rule is in `transfer_gap`)."""
    pairs = data["pairs"]
    training = data["training"]
    assert isinstance(pairs, dict) and isinstance(training, dict)
    if not all(f"{a}->{b}" in pairs for a in BACKENDS for b in BACKENDS):
        return []
    out = [
        "Reading (training took "
        + " and ".join(f"{training[b]['train_wall_s']:.0f} s in {b}" for b in BACKENDS if b in training)
        + "; rule: a drop in success counts as a transfer gap when it is larger than two standard errors of the "
        "difference of the two success rates over the evaluation episodes):",
        "",
    ]
    gaps = {}
    for a, b in (BACKENDS, BACKENDS[::-1]):
        g = transfer_gap(pairs, a, b)
        gaps[a] = g
        dist = pairs[f"{a}->{b}"]["final_distance_m"]
        out.append(
            f"* trained in {a}: {g['home']:.2f} at home, {g['away']:.2f} in {b} — "
            f"{100 * g['drop']:.0f} points lost against a noise bound of {100 * g['two_se']:.0f} points: "
            + ("a transfer gap" if g["significant"] else "within sampling noise")
            + f" (final distance {100 * pairs[f'{a}->{a}']['final_distance_m']:.1f} → {100 * dist:.1f} cm)."
        )
    one_way = [a for a, g in gaps.items() if g["significant"]]
    if len(one_way) == 1:
        a = one_way[0]
        b = next(x for x in BACKENDS if x != a)
        out.append(
            f"* The gap is **asymmetric**: only the {a}-trained policy loses success in the other engine. The "
            f"engines differ mainly in the joint servo that turns a command into motion, so the likely reading "
            f"(not proven by this table) is that {b} is the harder engine for this policy and a policy that "
            f"learned there transfers both ways: prefer it as a proxy for sim-to-real, or train in {a} with domain "
            "randomization of actuator gains and latency ([../sim.md](../sim.md)) until the gap closes."
        )
    elif len(one_way) == 2:
        out.append("* Both directions lose success beyond noise: neither engine's policy transfers.")
    else:
        out.append("* Neither direction loses success beyond noise.")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", default="robot_rl/PandaReach-v0")
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-alpha", type=float, default=0.1)
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--from-json", type=Path, help="re-render sim2sim.md from this JSON (no training)")
    args = ap.parse_args(argv)
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        write_report(data, args.out_dir, str(data["command"]).strip(), write_json=False)
        return 0
    command = "python bench/sim2sim.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="sim2sim-") as tmp:
        data = run(args.env, args.steps, args.episodes, args.seed, Path(tmp), args.init_alpha)
    data["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    data["command"] = command
    write_report(data, args.out_dir, command.strip())
    print(f"wrote {args.out_dir / 'sim2sim.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
