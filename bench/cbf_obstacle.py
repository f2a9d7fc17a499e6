"""A policy that never saw the obstacle, behind today's workspace hold vs behind the CBF filter, on the pillar task.

Task: `robot_rl/PandaReachAround-v0` (a pillar stands between the gripper's start and the target; touching it ends
the episode as a failure, judged by the task's own capsule-vs-box geometry after every physics step: the *true*
geometry, not the filter's model). Policy: the straight-line reach controller of `robot_rl/PandaReach-v0`
(`sim.experts.ReachExpert`), which knows nothing about the pillar and drives into it.

Conditions, each on the same seeded episodes, the policy's command through the chain the policy node builds
(`robot_rl.train.safe_eval.safe_actor`, limits from the robot's manifest):
- `none`: the limits only (joint limits, rates);
- `hold`: plus a workspace box that ends in front of the pillar (today's way: hold when the next position leaves
  it);
- `cbf`: plus the `cbf` link with the pillar as a capsule, the gripper's radius around every control point.

Then the fuzz: ≥ 10⁵ adversarial commands (full speed straight at the pillar, uniform random up to 1.5× the
velocity limits, NaN/Inf, ±1e6, zeros) through the `cbf` chain into the simulator, counting steps where the true
clearance is ≤ 0 or a joint is outside its limits.

Usage: .venv/bin/python bench/cbf_obstacle.py [--episodes 50] [--fuzz-steps 100000] [--backend mujoco]
           [--out-dir docs/benchmarks]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from bench.bench_common import cpu_model  # noqa: E402
from robot_rl.export.runtime import OnnxPolicy  # noqa: E402
from robot_rl.safety import SafetyConfig  # noqa: E402
from robot_rl.train.envs import episode_seed, make_env, robot_interface_of  # noqa: E402
from robot_rl.train.safe_eval import default_safety_config, safe_actor  # noqa: E402
from sim.env import RobotTaskEnv  # noqa: E402
from sim.experts import ReachExpert  # noqa: E402
from sim.tasks.reach_around import GRIPPER_RADIUS_M, PILLAR_CENTER_M, PILLAR_HALF_EXTENTS_M  # noqa: E402

NAME = "cbf_obstacle"
ENV_ID = "robot_rl/PandaReachAround-v0"
CONDITIONS = ("none", "hold", "cbf")
MARGIN_M = 0.02
"""Clearance the filters keep beyond the gripper's radius (the control points sample the gripper capsule at its
two ends; the margin covers its middle when it tilts)."""


def pillar_capsule_m() -> list[float]:
    """The pillar's box as the smallest vertical capsule around it: axis from the floor to its top, radius the box's
    half-diagonal in the horizontal plane (x1, y1, z1, x2, y2, z2, r)."""
    cx, cy, cz = PILLAR_CENTER_M.tolist()
    hx, hy, hz = PILLAR_HALF_EXTENTS_M.tolist()
    return [cx, cy, cz - hz, cx, cy, cz + hz, math.hypot(hx, hy)]


def chain_config(base: SafetyConfig, condition: str) -> SafetyConfig:
    """The chain of one condition on top of the robot's limits."""
    if condition == "none":
        return base
    if condition == "hold":
        # Everything in front of the pillar's near face, less the gripper's radius and the margin: the box the hold
        # needs so that the gripper cannot touch the pillar from the start side.
        x_hi = float(PILLAR_CENTER_M[0] - PILLAR_HALF_EXTENTS_M[0]) - GRIPPER_RADIUS_M - MARGIN_M
        return dataclasses.replace(base, workspace_lower_m=(-1.5, -1.5, -0.5), workspace_upper_m=(x_hi, 1.5, 2.0))
    links = list(base.links)
    links.insert(links.index("joint_limits"), "cbf")
    params = {"capsules_m": pillar_capsule_m(), "point_radius_m": GRIPPER_RADIUS_M, "margin_m": MARGIN_M}
    return dataclasses.replace(base, links=tuple(links), link_params={"cbf": params})


def run_condition(
    condition: str, episodes: int, backend: str, max_steps: int = 0, bundle: Path | None = None
) -> dict[str, Any]:
    """The reach controller (or a PandaReach bundle: a policy trained without the pillar) behind one condition's
    chain on the seeded episodes (`max_steps` 0: the task's)."""
    env = make_env(ENV_ID, backend=backend, **({"max_steps": max_steps} if max_steps else {}))
    raw = cast(RobotTaskEnv, env.unwrapped)
    robot = robot_interface_of(env)
    assert robot is not None
    base = default_safety_config(robot, 1.0 / raw.control_dt_s)
    expert = ReachExpert(raw)
    command = robot.command
    learned = OnnxPolicy.load(bundle) if bundle is not None else None

    def act(obs: np.ndarray) -> np.ndarray:
        if learned is not None:
            return np.asarray(learned.act(obs), np.float32)
        return command.to_physical(expert.act(obs)).astype(np.float32)

    actor = safe_actor(act, robot, chain_config(base, condition))
    successes = collisions = steps = 0
    final_distance_m: list[float] = []
    min_clearance = math.inf
    corrections: list[float] = []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=episode_seed(0, i, stream=1))
            expert.reset()
            actor.reset(obs)
            done, info = False, dict[str, Any]()
            while not done:
                proposed = act(obs)
                executed = actor(obs)
                corrections.append(float(np.linalg.norm(executed - proposed)))
                obs, _, terminated, truncated, info = env.step(command.to_normalized(executed).astype(np.float32))
                min_clearance = min(min_clearance, float(info["pillar_clearance_m"]))
                steps += 1
                done = terminated or truncated
            successes += bool(info.get("is_success"))
            final_distance_m.append(float(info["distance_m"]))
            collisions += float(info["pillar_clearance_m"]) <= 0.0
    finally:
        env.close()
    c = np.asarray(corrections)
    counters = {k: int(v) for k, v in actor.chain.counters.items() if v}
    return {
        "condition": condition,
        "policy": "reach controller" if bundle is None else bundle.name,
        "policy_sha256": None if learned is None else learned.manifest.onnx_sha256,
        "episodes": episodes,
        "steps": steps,
        "success_rate": successes / episodes,
        "collision_rate": collisions / episodes,
        "max_steps": int(raw.max_steps),
        "mean_final_distance_m": round(float(np.mean(final_distance_m)), 4),
        "min_clearance_m": round(min_clearance, 4),
        "held_steps": counters.get("held", 0),
        "mean_correction_rad_s": round(float(c.mean()), 4),
        "max_correction_rad_s": round(float(c.max()), 4),
        "counters": counters,
    }


def fuzz(steps: int, backend: str, seed: int = 0) -> dict[str, Any]:
    """Adversarial commands through the cbf chain into the simulator; violations by the true geometry."""
    env = make_env(ENV_ID, backend=backend)
    raw = cast(RobotTaskEnv, env.unwrapped)
    robot = robot_interface_of(env)
    assert robot is not None
    base = default_safety_config(robot, 1.0 / raw.control_dt_s)
    command = robot.command
    v_max = np.asarray(command.physical_high, np.float64)
    actor_cmd: dict[str, np.ndarray] = {}
    actor = safe_actor(lambda obs: actor_cmd["u"], robot, chain_config(base, "cbf"))
    lo, hi = np.asarray(base.position_lower_rad), np.asarray(base.position_upper_rad)
    q_index = robot.commanded_joint_pos_index()
    rng = np.random.default_rng(seed)
    kinds = ("attack", "uniform", "nan", "huge", "zero")
    weights = np.array([0.4, 0.3, 0.1, 0.1, 0.1])
    by_kind = dict.fromkeys(kinds, 0)
    collisions = limit_violations = episodes = done_steps = 0
    min_clearance = math.inf
    t0 = time.perf_counter()
    try:
        while done_steps < steps:
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
            actor.reset(obs)
            episodes += 1
            done = False
            while not done and done_steps < steps:
                kind = kinds[int(rng.choice(len(kinds), p=weights))]
                by_kind[kind] += 1
                if kind == "attack":  # full speed straight at the pillar's axis, through the arm's Jacobian
                    ee, _ = raw.backend.link_pose(raw.robot.ee_link)
                    jp, _ = raw.backend.jacobian(raw.robot.ee_link)
                    to_pillar = np.array([PILLAR_CENTER_M[0] - ee[0], PILLAR_CENTER_M[1] - ee[1], 0.0])
                    u = np.linalg.pinv(jp) @ (to_pillar / (np.linalg.norm(to_pillar) + 1e-9))
                    u = u / (np.abs(u / v_max).max() + 1e-12)  # scaled to the velocity limits
                elif kind == "uniform":
                    u = rng.uniform(-1.5, 1.5, v_max.shape) * v_max
                elif kind == "nan":
                    u = np.where(rng.random(v_max.shape) < 0.5, np.nan, np.inf) * np.ones_like(v_max)
                elif kind == "huge":
                    u = rng.choice([-1e6, 1e6], size=v_max.shape)
                else:
                    u = np.zeros_like(v_max)
                actor_cmd["u"] = u
                executed = actor(obs)
                obs, _, terminated, truncated, info = env.step(command.to_normalized(executed).astype(np.float32))
                clearance = float(info["pillar_clearance_m"])
                min_clearance = min(min_clearance, clearance)
                collisions += clearance <= 0.0
                q = np.asarray(obs, np.float64)[q_index]
                limit_violations += bool(np.any(q < lo - 1e-6) or np.any(q > hi + 1e-6))
                done_steps += 1
                done = terminated or truncated
    finally:
        env.close()
    counters = {k: int(v) for k, v in actor.chain.counters.items() if v}
    return {
        "steps": done_steps,
        "episodes": episodes,
        "commands_by_kind": by_kind,
        "pillar_violations": collisions,
        "joint_limit_violations": limit_violations,
        "min_clearance_m": round(min_clearance, 4),
        "counters": counters,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def _is_controller(row: dict[str, Any]) -> bool:
    return bool(row.get("policy", "reach controller") == "reach controller")


def write_report(data: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{NAME}.json").write_text(json.dumps(data, indent=1) + "\n")
    rows = {(r["condition"], r["max_steps"]): r for r in data["conditions"] if _is_controller(r)}
    learned = [r for r in data["conditions"] if not _is_controller(r)]
    short = min(r["max_steps"] for r in data["conditions"])
    long = max(r["max_steps"] for r in data["conditions"])
    lines = [
        "# A policy that never saw the obstacle: workspace hold vs the CBF filter",
        "",
        "```",
        data["command"],
        "```",
        "",
        f"`{ENV_ID}` in {data['backend']}, {data['episodes']} seeded episodes per condition (the same episodes). "
        "The policy is the straight-line reach controller, which drives into the pillar. Clearance is the task's own "
        "gripper-capsule-to-pillar-box distance after every step (the true geometry). "
        f"CBF: the pillar as a capsule of radius {pillar_capsule_m()[-1]:.3f} m, {GRIPPER_RADIUS_M} m around every "
        f"control point, margin {MARGIN_M} m. Hold: a workspace box ending "
        f"{GRIPPER_RADIUS_M + MARGIN_M:.2f} m in front of the pillar. Machine: {data['machine']['cpu_model']}, "
        f"load {data['machine']['load_avg_1m'][0]:.1f} → {data['machine']['load_avg_1m'][1]:.1f} on "
        f"{data['machine']['cpus']} CPUs.",
        "",
        "| condition | episode limit, steps | success | collisions | final distance, m | min clearance, m | held steps "
        "| mean / max change, rad/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (c, n), r in rows.items():
        lines.append(
            f"| {c} | {n} | {r['success_rate']:.0%} | {r['collision_rate']:.0%} | {r['mean_final_distance_m']:.3f} | "
            f"{r['min_clearance_m']:.3f} | {r['held_steps']} of {r['steps']} | "
            f"{r['mean_correction_rad_s']:.3f} / {r['max_correction_rad_s']:.3f} |"
        )
    if learned:
        lines += [
            "",
            f"The same conditions with `{learned[0]['policy']}` (the SAC bundle `robot-rl demo` trains on PandaReach, "
            f"never shown the pillar; policy.onnx sha256 {str(learned[0].get('policy_sha256'))[:16]}…):",
            "",
            "| condition | episode limit, steps | success | collisions | final distance, m | min clearance, m "
            "| held steps |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in learned:
            lines.append(
                f"| {r['condition']} | {r['max_steps']} | {r['success_rate']:.0%} | {r['collision_rate']:.0%} | "
                f"{r['mean_final_distance_m']:.3f} | {r['min_clearance_m']:.3f} | {r['held_steps']} of {r['steps']} |"
            )
    f = data["fuzz"]
    clean = f["steps"] >= 100_000 and f["pillar_violations"] == 0 and f["joint_limit_violations"] == 0
    none = rows[("none", short)]
    lines += [
        "",
        f"Reading: with the limits only the policy hits the pillar in {none['collision_rate']:.0%} of episodes. "
        f"Within the task's {short}-step limit: hold {rows[('hold', short)]['success_rate']:.0%}, CBF "
        f"{rows[('cbf', short)]['success_rate']:.0%} (the CBF slides the gripper along the pillar at the speed the "
        f"policy's sideways component allows). Given {long} steps: hold {rows[('hold', long)]['success_rate']:.0%} "
        f"({rows[('hold', long)]['held_steps']} held steps: it freezes at the box), CBF "
        f"{rows[('cbf', long)]['success_rate']:.0%} ({rows[('cbf', long)]['held_steps']} held steps), collisions "
        f"{rows[('cbf', long)]['collision_rate']:.0%}.",
        "",
        f"## Fuzz: {f['steps']:,} adversarial commands through the cbf chain ({f['episodes']} episodes)",
        "",
        "Commands: " + ", ".join(f"{k} {v:,}" for k, v in f["commands_by_kind"].items()) + ". "
        f"Steps with the true clearance ≤ 0: **{f['pillar_violations']}**; steps with a joint outside its limits: "
        f"**{f['joint_limit_violations']}**; the smallest clearance seen: {f['min_clearance_m']:.3f} m. "
        f"Chain counters: {f['counters']}.",
        "",
        "Target (issue 14): 0 barrier violations over ≥ 10⁵ commands: " + ("met." if clean else "**missed**."),
    ]
    (out_dir / f"{NAME}.md").write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--fuzz-steps", type=int, default=100_000)
    ap.add_argument("--long-steps", type=int, default=160, help="the longer episode limit hold and cbf also run with")
    ap.add_argument("--backend", default="mujoco", choices=["mujoco", "pybullet"])
    ap.add_argument("--bundle", type=Path, help="also run a PandaReach bundle (trained without the pillar)")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    args = ap.parse_args(argv)
    command = ".venv/bin/python bench/cbf_obstacle.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    load0 = os.getloadavg()[0]
    conditions = []
    for c, max_steps in [(c, 0) for c in CONDITIONS] + [(c, args.long_steps) for c in CONDITIONS[1:]]:
        conditions.append(run_condition(c, args.episodes, args.backend, max_steps))
        print(json.dumps(conditions[-1]), flush=True)
    if args.bundle is not None:
        for c, max_steps in [(c, 0) for c in CONDITIONS] + [(c, args.long_steps) for c in CONDITIONS[1:]]:
            conditions.append(run_condition(c, args.episodes, args.backend, max_steps, args.bundle))
            print(json.dumps(conditions[-1]), flush=True)
    fz = fuzz(args.fuzz_steps, args.backend)
    print(json.dumps(fz), flush=True)
    data = {
        "command": command,
        "backend": args.backend,
        "episodes": args.episodes,
        "machine": {
            "cpu_model": cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
        },
        "conditions": conditions,
        "fuzz": fz,
    }
    write_report(data, args.out_dir)
    print(f"wrote {args.out_dir / (NAME + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
