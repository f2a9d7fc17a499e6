"""Sim evaluation behind the deployment safety chain (S5): filter on → no executed command beyond the limits.

The violation count covers every command interface and can fail: hand-made command sequences that break each
limit are counted, and the raw policy breaks them in the same sims where the chain brings them to zero.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_rl.cli import main
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.safety import SafetyConfig
from robot_rl.safety.links import WorkspaceLink
from robot_rl.train.evaluate import evaluate
from robot_rl.train.safe_eval import (
    VIOLATION_KEYS,
    default_safety_config,
    limit_violations,
    load_safety_config,
    safe_actor,
)

DT = 0.1


def small(iface: str) -> SafetyConfig:
    """Two joints: |q| <= 1 rad, |v| <= 1 rad/s, |a| <= 5 rad/s² (0.5 rad/s per 0.1 s step), |τ| <= 2."""
    return SafetyConfig.for_joints(
        ["a", "b"], iface, DT, [-1.0, -1.0], [1.0, 1.0], [1.0, 1.0], acceleration=[5.0, 5.0], effort=[2.0, 2.0]
    )


def seq(*rows: tuple[float, float]) -> list[list[np.ndarray]]:
    return [[np.array(r, np.float64) for r in rows]]


def only(counts: dict[str, int], **expected: int) -> None:
    assert {k: counts[k] for k in VIOLATION_KEYS} == {k: expected.get(k, 0) for k in VIOLATION_KEYS}, counts


def test_position_interface_counts_each_limit() -> None:
    cfg = small("position")
    start = seq((0.0, 0.0))[0]
    # Within every limit: 0.04 rad per step = 0.4 rad/s, reached from rest in one step (0.4 <= 0.5 rad/s).
    only(limit_violations(seq((0.04, 0.0), (0.08, 0.0), (0.12, 0.0)), cfg, DT, [start * 3]))
    only(limit_violations(seq((0.0, 1.2)), cfg, DT), position=1)  # beyond the upper limit
    # 0.15 rad in a step is 1.5 rad/s (velocity), and 1.5 rad/s from rest is 15 rad/s² (acceleration).
    only(limit_violations(seq((0.15, 0.0)), cfg, DT, [start]), velocity=1, acceleration=1)
    # Steady at 0.4 rad/s, then a reversal to -0.4 rad/s: 8 rad/s² in one step.
    only(limit_violations(seq((0.04, 0.0), (0.08, 0.0), (0.04, 0.0)), cfg, DT, [start] * 3), acceleration=1)
    # A held target (a stop) is exempt from the acceleration limit, like the chain's holds.
    only(limit_violations(seq((0.04, 0.0), (0.08, 0.0), (0.08, 0.0)), cfg, DT, [start] * 3))
    with_margin = dataclasses.replace(cfg, position_margin_rad=0.1)
    only(limit_violations(seq((0.95, 0.0)), with_margin, DT), position=1)  # the margined limit counts


def test_velocity_interface_counts_each_limit() -> None:
    cfg = small("velocity")
    only(limit_violations(seq((0.3, 0.0), (0.6, 0.0), (0.3, 0.0), (0.0, 0.0)), cfg, DT))
    only(limit_violations(seq((0.3, 0.0), (0.6, 0.0), (0.9, 0.0), (1.2, 0.0)), cfg, DT), velocity=1)
    only(limit_violations(seq((0.0, -0.6)), cfg, DT), acceleration=1)
    # From 0.98 rad, 0.3 rad/s for 0.1 s ends beyond the 1 rad limit; from beyond it, only going back is fine.
    near = [[np.array([0.98, 0.0]), np.array([1.1, 0.0])]]
    only(limit_violations(seq((0.3, 0.0), (-0.2, 0.0)), cfg, DT, near), position=1)


def test_effort_interface_counts_each_limit() -> None:
    cfg = small("effort")
    only(limit_violations(seq((1.9, -2.0), (0.0, 0.0)), cfg, DT))
    only(limit_violations(seq((2.5, 0.0), (0.0, -3.0)), cfg, DT), effort=2)
    at_limit = [[np.array([1.0, 0.0]), np.array([-1.0, 0.0])]]
    only(limit_violations(seq((0.5, 0.0), (0.5, 0.0)), cfg, DT, at_limit), position=1)  # pushing further out


def _raw_and_safe(bundle: Path, config: SafetyConfig, episodes: int = 2) -> tuple[dict[str, int], dict[str, int], Any]:
    policy = OnnxPolicy.load(bundle)
    robot = policy.spec.robot
    assert robot is not None
    raw: list[list[np.ndarray]] = []
    raw_q: list[list[np.ndarray]] = []
    index = robot.commanded_joint_pos_index()

    def unfiltered(obs: np.ndarray) -> np.ndarray:
        a = policy.act(obs)
        raw[-1].append(a.astype(np.float64))
        raw_q[-1].append(np.asarray(obs, np.float64)[index])
        return a

    def new_episode(obs: np.ndarray) -> None:
        raw.append([])
        raw_q.append([])

    # spec=: the env of the bundle's own command interface (a position bundle drives a position-controlled arm)
    evaluate(unfiltered, "robot_rl/PandaReach-v0", episodes, 0, on_reset=new_episode, spec=policy.spec)
    off = limit_violations(raw, config, config.control_period_s, raw_q)
    actor = safe_actor(policy.act, robot, config)
    res = evaluate(actor, "robot_rl/PandaReach-v0", episodes, 0, on_reset=actor.reset, spec=policy.spec)
    on = limit_violations(actor.executed, config, config.control_period_s, actor.measured)
    assert on["steps"] == off["steps"] == sum(res.lengths)
    return off, on, actor


def test_chain_in_the_loop_removes_every_limit_violation(reach_bundle: Path) -> None:
    policy = OnnxPolicy.load(reach_bundle)
    # A tight acceleration limit (0.1 rad/s of change per 50 ms step) so that the raw policy breaks it.
    config = dataclasses.replace(
        default_safety_config(policy.spec.robot, policy.spec.control_hz), acceleration_limit_rad_s2=(2.0,) * 7
    )
    assert config.command_interface == "velocity"
    off, on, actor = _raw_and_safe(reach_bundle, config)
    assert off["acceleration"] > 0, off  # a random policy jerks: the check can fail
    only(on)
    assert actor.chain.counters["acceleration_limit"] > 0


def test_position_bundle_chain_removes_every_limit_violation(reach_position_bundle: Path) -> None:
    policy = OnnxPolicy.load(reach_position_bundle)
    config = dataclasses.replace(
        default_safety_config(policy.spec.robot, policy.spec.control_hz), acceleration_limit_rad_s2=(2.0,) * 7
    )
    assert config.command_interface == "position"
    off, on, actor = _raw_and_safe(reach_position_bundle, config)
    assert off["velocity"] + off["acceleration"] > 0, off  # random targets jump: the check can fail
    only(on)
    assert actor.chain.counters["velocity_limit"] + actor.chain.counters["acceleration_limit"] > 0


def _box_yaml(path: Path, lower: list[float], upper: list[float]) -> Path:
    path.write_text(
        "/**/policy_node:\n  ros__parameters:\n    safety:\n"
        f"      workspace_lower_m: {lower}\n      workspace_upper_m: {upper}\n"
    )
    return path


def test_workspace_box_yaml_runs_in_the_sim_eval(reach_bundle: Path, tmp_path: Path) -> None:
    policy = OnnxPolicy.load(reach_bundle)
    robot = policy.spec.robot
    assert robot is not None and robot.urdf and robot.ee_link
    yaml_path = _box_yaml(tmp_path / "box.yaml", [-2.0, -2.0, -1.0], [2.0, 2.0, 3.0])
    config = load_safety_config(str(yaml_path), robot, policy.spec.control_hz)
    actor = safe_actor(policy.act, robot, config)
    (workspace,) = [link for link in actor.chain.links if isinstance(link, WorkspaceLink)]
    assert workspace.box is not None  # the box is enforced with the URDF's FK, as on the robot
    # A box the arm's home pose is already outside of: every step holds, with the workspace as the reason.
    tight = load_safety_config(str(_box_yaml(tmp_path / "tight.yaml", [5.0, 5.0, 5.0], [6.0, 6.0, 6.0])), robot,
                               policy.spec.control_hz)  # fmt: skip
    held = safe_actor(policy.act, robot, tight)
    res = evaluate(held, "robot_rl/PandaReach-v0", 1, 0, on_reset=held.reset)
    assert held.chain.counters["workspace"] == held.chain.counters["held"] == sum(res.lengths)
    assert main(["eval", "--policy", str(reach_bundle), "--episodes", "1", "--safety", str(yaml_path)]) == 0


def test_eval_cli_with_safety(reach_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--policy", str(reach_bundle), "--episodes", "1", "--safety", "manifest"]) == 0
    out = capsys.readouterr().out
    assert "behind the safety chain" in out
    assert "beyond the velocity-interface limits: position 0, velocity 0, acceleration 0, effort 0 of" in out
    assert main(["eval", "--policy", str(reach_bundle), "--episodes", "1", "--safety", "/nonexistent.yaml"]) != 0
