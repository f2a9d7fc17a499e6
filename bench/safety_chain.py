"""Per-step latency of the safety chain with the URDF forward kinematics the policy node loads, side by side with
the same chain on the old numpy FK stub and a bare np.clip + isfinite; 7-DoF Panda, position interface, workspace box.

The chain runs the whole step (e-stop, watchdogs, input checks, the joint-limit clamp with braking, the workspace
check through `UrdfChain.position` of pybullet_data's Panda URDF, as `build_chain` wires it on the robot). Commands
follow the previous output with small random steps, and one in ten jumps far enough to be clipped. In each loop
iteration the same command goes, in turn, to the URDF-FK chain, to an identical chain whose workspace check uses
the cheap stub FK this benchmark timed before, and to the peer: `np.clip(command, lo, hi)` plus
`np.isfinite(...).all()`, the least a filter does. Writes docs/benchmarks/safety_chain.{md,json}.

Usage: .venv/bin/python bench/safety_chain.py [--samples 20000] [--warmup 1000] [--out-dir docs/benchmarks]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from bench.bench_common import cpu_model, latency_summary_us  # noqa: E402
from robot_rl.safety import SafetyChain, SafetyConfig, build_chain  # noqa: E402
from robot_rl.safety.urdf_kinematics import UrdfChain, load_urdf_chain  # noqa: E402

TARGET_P99_US = 20.0
N_JOINTS = 7
JOINTS = [f"panda_joint{i + 1}" for i in range(N_JOINTS)]
URDF = "pybullet_data:franka_panda/panda.urdf"  # what launch/params/panda_reach_sim.yaml gives the policy node
EE_LINK = "panda_grasptarget"
PERIOD_S = 0.002  # 500 Hz, a typical torque/position loop rate for a 7-DoF arm
LOWER = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)  # Franka Panda joint limits, rad
UPPER = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
VELOCITY = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)
LINKS_M = np.array([0.333, 0.316, 0.0825, 0.384, 0.088, 0.107, 0.1])
JUMP_EVERY = 10  # one command in ten jumps beyond the rate limits


def fk_stub(q: np.ndarray) -> np.ndarray:
    """End-effector position (m) of a 7-joint arm: joint 0 yaws the arm, joints 1..6 pitch in its plane.

    The FK this benchmark used before it timed the URDF chain: cheap numpy (cumulative pitch angles, link
    vectors summed, then the yaw rotation); kept as the side-by-side peer of the real `UrdfChain`.
    """
    pitch = np.cumsum(q[1:])
    reach = float(LINKS_M[1:] @ np.sin(pitch))
    height = LINKS_M[0] + float(LINKS_M[1:] @ np.cos(pitch))
    return np.array([reach * math.cos(q[0]), reach * math.sin(q[0]), height])


def bench_config() -> SafetyConfig:
    """The benchmark's 7-DoF position-interface config with a generous workspace box (base frame, m)."""
    return SafetyConfig.for_joints(
        JOINTS,
        "position",
        PERIOD_S,
        LOWER,
        UPPER,
        VELOCITY,
        position_margin_rad=0.05,
        workspace_lower_m=(-1.2, -1.2, -0.5),
        workspace_upper_m=(1.2, 1.2, 1.5),
    )


def build_chains() -> tuple[SafetyChain, SafetyChain, UrdfChain]:
    """(chain with the Panda URDF's FK as the node loads it, the same chain with the stub FK, the URDF chain)."""
    cfg = bench_config()
    urdf = load_urdf_chain(URDF, EE_LINK, JOINTS)
    return build_chain(cfg, urdf), build_chain(cfg, fk_stub), urdf


summarize = latency_summary_us


def run(samples: int, warmup: int, seed: int = 0) -> dict[str, Any]:
    """Time `samples` steps of both chains and the peer (interleaved, one of each per iteration) after `warmup`."""
    chain, stub_chain, urdf = build_chains()
    lo = np.asarray(LOWER) + 0.05
    hi = np.asarray(UPPER) - 0.05
    vmax = np.asarray(VELOCITY)
    q = 0.5 * (lo + hi)
    chain.reset(q)
    stub_chain.reset(q)
    rng = np.random.default_rng(seed)
    total = warmup + samples
    accel = 10.0 * vmax  # SafetyConfig.for_joints default
    # Safe-ish commands: the velocity of the previous output plus a random change within half the acceleration
    # allowance, capped at half the velocity limit and pulled toward mid-range (so the braking rule rarely
    # acts); every JUMP_EVERY-th command jumps up to 30x the per-step velocity allowance and gets clipped.
    dv = rng.uniform(-0.5, 0.5, size=(total, N_JOINTS)) * accel * PERIOD_S
    big = rng.uniform(-30.0, 30.0, size=(total, N_JOINTS)) * vmax * PERIOD_S
    jump = (np.arange(total) % JUMP_EVERY) == JUMP_EVERY - 1
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    ns = {key: np.empty(samples, dtype=np.int64) for key in ("chain", "stub", "peer", "fk_urdf", "fk_stub")}
    changed_mask = np.zeros(samples, dtype=bool)
    held = 0
    clock = time.perf_counter_ns
    now = 0.0
    out, v_out = q, np.zeros(N_JOINTS)
    for i in range(total):
        # Built outside the timed region: a fresh command object each step, as a policy would hand over.
        if jump[i]:
            command = out + big[i]
        else:
            pull = -0.2 * accel * PERIOD_S * (out - mid) / half
            v_cmd = np.clip(v_out + dv[i] + pull, -0.5 * vmax, 0.5 * vmax)
            v_cmd = np.clip(v_cmd, v_out - 0.9 * accel * PERIOD_S, v_out + 0.9 * accel * PERIOD_S)
            command = out + v_cmd * PERIOD_S
        now += PERIOD_S
        kw = {"now_s": now, "joint_pos_rad": out, "joint_vel_rad_s": None}
        t0 = clock()
        result = chain.filter(command, observation_stamp_s=now, command_stamp_s=now, **kw)
        t1 = clock()
        stub_chain.filter(command.copy(), observation_stamp_s=now, command_stamp_s=now, **kw)
        t2 = clock()
        clipped = np.clip(command, lo, hi)
        ok = bool(np.isfinite(clipped).all())
        t3 = clock()
        urdf.position(result.action)
        t4 = clock()
        fk_stub(result.action)
        t5 = clock()
        if not ok:
            raise RuntimeError("peer produced a non-finite command")
        v_out = (result.action - out) / PERIOD_S
        out = result.action
        if i >= warmup:
            k = i - warmup
            for key, (a, b) in (
                ("chain", (t0, t1)),
                ("stub", (t1, t2)),
                ("peer", (t2, t3)),
                ("fk_urdf", (t3, t4)),
                ("fk_stub", (t4, t5)),
            ):
                ns[key][k] = b - a
            changed_mask[k] = bool(result.changed_by)
            held += result.held
    us = {key: v / 1e3 for key, v in ns.items()}
    split = {}
    for key in ("chain", "stub"):
        split[key] = {
            "all": summarize(us[key]),
            "unchanged": summarize(us[key][~changed_mask]),
            "clipped": summarize(us[key][changed_mask]),
        }
    return {
        **split,
        "peer": summarize(us["peer"]),
        "fk_urdf": summarize(us["fk_urdf"]),
        "fk_stub": summarize(us["fk_stub"]),
        "fraction_changed": round(float(changed_mask.mean()), 4),
        "fraction_held": round(held / samples, 4),
        "counters": chain.counters,
    }


def _flat(prefix: str, split: dict[str, dict[str, float]]) -> dict[str, float]:
    """`{prefix}{outcome}_{stat}` keys (e.g. unchanged_p99_us) from a {outcome: summary} split."""
    return {
        f"{prefix}{outcome}_{stat}": summary[stat]
        for outcome, summary in split.items()
        for stat in ("p50_us", "p99_us", "p99_9_us")
        if stat in summary
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else round(a / b, 2)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Time the chains and the peer, print and write the report; returns the report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000, help="timed steps (each chain and the peer)")
    parser.add_argument("--warmup", type=int, default=1_000, help="untimed steps first")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.warmup < 0:
        parser.error("--samples must be >= 1 and --warmup >= 0")

    load_before = os.getloadavg()
    res = run(args.samples, args.warmup)
    load_after = os.getloadavg()
    chain_all, peer = res["chain"]["all"], res["peer"]
    argv_list = list(sys.argv[1:] if argv is None else argv)
    command = ".venv/bin/python bench/safety_chain.py " + " ".join(shlex.quote(a) for a in argv_list)
    flat = _flat("", res["chain"])
    stub_flat = _flat("stub_fk_", res["stub"])
    report: dict[str, Any] = {
        "command": command.strip(),
        "forward_kinematics": f"UrdfChain.position ({URDF}, ee_link {EE_LINK})",
        # Headline keys (the URDF-FK chain), stable for README's table.
        "p50_us": chain_all["p50_us"],
        "p99_us": chain_all["p99_us"],
        "p99_9_us": chain_all["p99_9_us"],
        "max_us": chain_all["max_us"],
        **flat,
        **stub_flat,
        "peer_p50_us": peer["p50_us"],
        "peer_p99_us": peer["p99_us"],
        "fk_urdf_p50_us": res["fk_urdf"]["p50_us"],
        "fk_stub_p50_us": res["fk_stub"]["p50_us"],
        "ratio_urdf_over_stub_fk": {
            outcome: _ratio(flat.get(f"{outcome}_p99_us"), stub_flat.get(f"stub_fk_{outcome}_p99_us"))
            for outcome in ("unchanged", "clipped", "all")
        },
        "ratio_chain_over_peer": {
            "p50": _ratio(chain_all["p50_us"], peer["p50_us"]),
            "p99": _ratio(chain_all["p99_us"], peer["p99_us"]),
        },
        "target_p99_us": TARGET_P99_US,
        "target_met": chain_all["p99_us"] <= TARGET_P99_US,
        "chain": chain_all,
        "chain_unchanged_steps": res["chain"]["unchanged"],
        "chain_clipped_steps": res["chain"]["clipped"],
        "stub_fk_chain": res["stub"]["all"],
        "stub_fk_chain_unchanged_steps": res["stub"]["unchanged"],
        "stub_fk_chain_clipped_steps": res["stub"]["clipped"],
        "peer_clip_isfinite": peer,
        "fk_urdf_alone": res["fk_urdf"],
        "fk_stub_alone": res["fk_stub"],
        "workload": {
            "n_joints": N_JOINTS,
            "command_interface": "position",
            "control_period_s": PERIOD_S,
            "workspace_box": True,
            "jump_every": JUMP_EVERY,
            "fraction_changed": res["fraction_changed"],
            "fraction_held": res["fraction_held"],
            "counters": res["counters"],
        },
        "machine": {
            "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "load_avg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "gc_enabled_while_timing": gc.isenabled(),
        },
        "method": (
            f"{args.warmup} warm-up steps, then {args.samples} steps; each step times one filter call of the "
            "URDF-FK chain, then of the stub-FK chain, then the peer, on the same command "
            "(time.perf_counter_ns around each call)"
        ),
    }
    _print(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "safety_chain.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / "safety_chain.md").write_text(_markdown(report))
    return report


_ROWS = (
    ("chain, URDF FK (what the node runs)", ""),
    ("chain, stub FK (the old benchmark)", "stub_fk_"),
)


_HEADER = (
    "| method | unchanged p50 | unchanged p99 | unchanged p99.9 | clipped p50 | clipped p99 | clipped p99.9 "
    "| all p50 | all p99 | all p99.9 |\n|---|---|---|---|---|---|---|---|---|---|"
)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _print(report: dict[str, Any]) -> None:
    print(f"{'method':<40}{'unchanged p99':>15}{'clipped p99':>13}{'all p50':>9}{'all p99':>9}{'all p99.9':>11}  (µs)")
    for name, prefix in _ROWS:
        print(
            f"{name:<40}{_fmt(report.get(f'{prefix}unchanged_p99_us')):>15}{_fmt(report.get(f'{prefix}clipped_p99_us')):>13}"
            f"{_fmt(report.get(f'{prefix}all_p50_us')):>9}{_fmt(report.get(f'{prefix}all_p99_us')):>9}"
            f"{_fmt(report.get(f'{prefix}all_p99_9_us')):>11}"
        )
    peer = report["peer_clip_isfinite"]
    name = "np.clip + isfinite (peer)"
    print(f"{name:<68}{peer['p50_us']:>9.1f}{peer['p99_us']:>9.1f}{peer['p99_9_us']:>11.1f}")
    print(f"URDF / stub FK chain, p99: {report['ratio_urdf_over_stub_fk']}")
    verdict = "met" if report["target_met"] else "MISSED"
    print(f"target p99 <= {report['target_p99_us']} µs: {verdict}")


def _markdown(report: dict[str, Any]) -> str:
    m, w = report["machine"], report["workload"]
    ratio, r_stub = report["ratio_chain_over_peer"], report["ratio_urdf_over_stub_fk"]
    verdict = "met" if report["target_met"] else "**missed**"
    rows = []
    for name, prefix in _ROWS:
        cells = [
            _fmt(report.get(f"{prefix}{outcome}_{stat}"))
            for outcome, stat in (
                ("unchanged", "p50_us"),
                ("unchanged", "p99_us"),
                ("unchanged", "p99_9_us"),
                ("clipped", "p50_us"),
                ("clipped", "p99_us"),
                ("clipped", "p99_9_us"),
                ("all", "p50_us"),
                ("all", "p99_us"),
                ("all", "p99_9_us"),
            )
        ]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    peer = report["peer_clip_isfinite"]
    rows.append(
        f"| `np.clip` + `np.isfinite` (peer) | | | | | | | {peer['p50_us']:.1f} | {peer['p99_us']:.1f} "
        f"| {peer['p99_9_us']:.1f} |"
    )
    fk_cost = report["fk_urdf_p50_us"] - report["fk_stub_p50_us"]
    unchanged_delta = (report.get("unchanged_p50_us") or 0.0) - (report.get("stub_fk_unchanged_p50_us") or 0.0)
    table = "\n".join(rows)
    return f"""# Safety chain latency (one control step)

```
{report["command"]}
```

Machine: {m["cpu"]}, {m["logical_cpus"]} logical CPUs, shared with other jobs (1-minute load average
{m["load_avg_1m_before_after"][0]} before, {m["load_avg_1m_before_after"][1]} after the timing); Python {m["python"]},
numpy {m["numpy"]}; garbage collector enabled while timing: {m["gc_enabled_while_timing"]}.

Workload: {w["n_joints"]}-DoF {w["command_interface"]} interface at {1 / w["control_period_s"]:.0f} Hz (Panda
limits, 0.05 rad margin) with a workspace box. The chain is built by `build_chain` with the forward kinematics the
policy node loads: {report["forward_kinematics"]}. Each command is the previous output plus a small random step;
one in {w["jump_every"]} jumps up to 30x the per-step velocity allowance. The chain changed
{100 * w["fraction_changed"]:.1f}% of the commands and held {100 * w["fraction_held"]:.1f}%.

Latency per step, µs:

{_HEADER}
{table}

- Chain: the full step: e-stop, observation and command watchdogs, shape and finiteness checks, the joint-limit
  clamp (position, velocity and acceleration limits with braking before the limits), the workspace check (FK
  included), the result with reasons (built only when a link acted), counters. Commands passed unchanged take
  the fast path (one combined bound test, then the workspace check); clipped ones go link by link.
- Stub FK: the same chain and commands with the cheap numpy FK this benchmark timed before the URDF chain.
- Peer: `np.clip(command, lo, hi)` and `np.isfinite(...).all()` on the same command — the least a filter does
  (and not enough: `np.clip` keeps NaN).

The URDF FK alone costs p50 {report["fk_urdf_p50_us"]:.1f} µs per call, the stub {report["fk_stub_p50_us"]:.1f} µs
({fk_cost:+.1f} µs); the unchanged-command p50 moves by {unchanged_delta:+.1f} µs between the two chains.
URDF-FK chain / stub-FK chain, p99: unchanged x{r_stub["unchanged"]}, clipped x{r_stub["clipped"]},
all x{r_stub["all"]}. URDF-FK chain / peer: p50 x{ratio["p50"]}, p99 x{ratio["p99"]}. With one command in
{w["jump_every"]} clipped, the overall p99 is a clipped step.

Target (issue): chain p99 <= {report["target_p99_us"]:.0f} µs: {verdict} (measured p99 {report["p99_us"]:.1f} µs).

Method: {report["method"]}. Wall-clock percentiles on a shared machine include preemption by other processes
(most visible in p99.9/max); they are not a real-time guarantee: pin the control thread to an isolated core
on the robot.
"""


if __name__ == "__main__":
    main()
