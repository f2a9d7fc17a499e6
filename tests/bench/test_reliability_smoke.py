"""Smoke test of bench/reliability.py: a tiny run (a few hundred inputs, one kill case, two tamper cases) writes
the documented JSON and markdown; the checker's rules are tested on hand-made commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.bench.bench_loader import load_bench


def test_checker_flags_each_rule_against_the_urdf() -> None:
    chk = load_bench("reliability_checker")
    from sim.robots.urdf import resolve

    joints = [f"panda_joint{i}" for i in range(1, 8)]
    limits = chk.read_urdf_limits(resolve("franka_panda/panda.urdf"), joints, chk.PANDA_ACCELERATION_RAD_S2)
    assert limits.upper_rad[3] == 0.0 and limits.velocity_rad_s[0] == pytest.approx(2.175)
    c = chk.CommandChecker(limits, "velocity", 0.05)
    c.start_position(np.zeros(7) + np.array([0, 0, 0, -1.0, 0, 1.0, 0]))
    assert c.check([0.0] * 7, "ok") == []
    assert c.check([float("nan")] + [0.0] * 6, "nan") == ["non_finite"]
    assert c.check([0.0] * 6, "short") == ["shape"]
    assert c.check([0.3] + [0.0] * 6, "ramp") == []  # 0.3 rad/s in one tick of 50 ms: 6 rad/s² < 15
    assert "acceleration_limit" in c.check([2.0] + [0.0] * 6, "jerk")
    assert "velocity_limit" in c.check([3.0] + [0.0] * 6, "fast")
    assert c.by_case["jerk"]["acceleration_limit"] == 1 and c.unsafe == 4 and c.checked == 6
    p = chk.CommandChecker(limits, "position", 0.05)
    p.start_position(np.zeros(7))
    assert p.check([0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0], "above_upper")[0] == "position_limit"


def test_checker_judges_each_tick_with_its_own_length() -> None:
    """A target moving at a constant legal velocity over uneven ticks is safe (its per-tick second difference
    with the nominal period would not be); a velocity jump inside a short tick is not."""
    chk = load_bench("reliability_checker")
    from sim.robots.urdf import resolve

    joints = [f"panda_joint{i}" for i in range(1, 8)]
    limits = chk.read_urdf_limits(resolve("franka_panda/panda.urdf"), joints, chk.PANDA_ACCELERATION_RAD_S2)
    p = chk.CommandChecker(limits, "position", 0.05)
    p.start_position(np.array([0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0]))
    q, t, v = 0.0, 100.0, 0.0
    for tick_s in (0.05,) * 10 + (0.025, 0.05, 0.001, 0.05, 0.05):  # ramp to 1.5 rad/s, then uneven ticks
        v = min(v + 0.7, 1.5)  # 0.7 rad/s per 50 ms tick: 14 rad/s² < 15 (panda_joint1)
        t += tick_s
        q += v * tick_s
        assert p.check([q, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0], "uneven", t) == [], (t, v)
    t += 0.001
    q += (v + 0.1) * 0.001  # +0.1 rad/s within 1 ms: 100 rad/s²
    assert p.check([q, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0], "jerk", t) == ["acceleration_limit"]


@pytest.mark.ros
@pytest.mark.slow
def test_reliability_tiny_run(tmp_path: Path) -> None:
    pytest.importorskip("rclpy")
    saved = dict(os.environ)
    try:
        load_bench("reliability").main(
            [
                "--inputs",
                "360",
                "--configs",
                "velocity/joint_states",
                "position/timer",
                "--kill-cases",
                "policy_node",
                "--tamper-cases",
                "weights_changed_unpinned",
                "onnx_swapped_rehashed_pinned",
                "--out-dir",
                str(tmp_path),
            ]
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    report = json.loads((tmp_path / "reliability.json").read_text())
    campaign = report["campaign"]
    assert campaign["adversarial_inputs"] >= 360 and campaign["commands_checked"] > 0
    assert [(r["interface"], r["trigger"]) for r in campaign["runs"]] == [
        ("velocity", "joint_states"),
        ("position", "timer"),
    ]
    for run in campaign["runs"]:
        # the warm-up's commands are checked too, under no case
        assert run["unsafe_commands"] >= sum(c["unsafe_commands"] for c in run["cases"].values())
        assert "outside_urdf_limits" in run["cases"] and "stamp_alternating" in run["cases"]
    (kill,) = report["kill_matrix"]
    assert kill["case"] == "policy_node" and "error" not in kill, kill
    assert {"hold_s", "data_lost_s", "held_in_time", "alive_after_8s"} <= set(kill)
    rows = {t["case"]: t for t in report["tamper_matrix"]}
    assert set(rows) == {"weights_changed_unpinned", "onnx_swapped_rehashed_pinned"}
    assert all(t["outcome"] == "refused" and "sha256" in t["reason"] for t in rows.values())
    assert {"zero_unsafe_commands", "one_million_inputs", "tamper_as_expected"} <= set(report["verdicts"])
    md = (tmp_path / "reliability.md").read_text()
    assert md.startswith("# Reliability") and "python bench/reliability.py" in md
