"""A simulated robot that re-initializes itself at rest when it ends an episode (`robot_resets_on_done`): the
roll-over re-anchors the chain there, so the new episode's first command starts from rest at the new pose. Without
the flag (a real robot) rate limits stay relative to the last command sent, across the roll-over."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ros_nodes.core.control_step import ControlStep
from ros_nodes.core.deployment import build_deployment
from ros_nodes.core.episode_session import EpisodeSession
from ros_nodes.core.sim_robot import SimRobot


def _feed(step: ControlStep, snap: object, t: float) -> None:
    err = step.assembler.update_joint_state(
        snap.joint_names,  # type: ignore[attr-defined]
        snap.positions,  # type: ignore[attr-defined]
        snap.velocities,  # type: ignore[attr-defined]
        arrival_s=t,
        header_stamp_s=t,
    )
    assert err is None
    for key, value in snap.observations.items():  # type: ignore[attr-defined]
        if key in step.assembler.layout.topic_keys:
            assert step.assembler.update_observation(key, value, arrival_s=t) is None


def _first_commands_after_rollovers(bundle: Path, resets_on_done: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """(last command of an episode, first command of the next) at each robot-ended roll-over."""
    step = build_deployment({"bundle_dir": str(bundle)}).step
    session = EpisodeSession(step, robot_resets_on_done=resets_on_done)
    robot = SimRobot("robot_rl/PandaReach-v0", episode_steps=5)  # ends while the arm is still moving
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    try:
        snap = robot.latest
        _feed(step, snap, snap.time_s)
        session.begin()
        last: np.ndarray | None = None
        pending = False
        for _ in range(80):
            _feed(step, snap, snap.time_s)
            a = session.tick(snap.time_s).record.executed_action
            if pending and last is not None:
                pairs.append((last, a.copy()))
                pending = False
            last = a.copy()
            assert robot.apply_command(a)
            snap = robot.step()
            if snap.episode_over:
                session.on_episode_done()
                snap = robot.reset()
                pending = True
        return pairs
    finally:
        robot.close()


def test_a_robot_that_resets_itself_restarts_the_rate_limits_from_rest(reach_saturated_bundle: Path) -> None:
    bundle = reach_saturated_bundle  # full speed until the end of each episode: the two behaviours differ
    cfg = build_deployment({"bundle_dir": str(bundle)}).step.chain.config
    assert cfg.command_interface == "velocity"
    a_dt = np.asarray(cfg.acceleration_limit_rad_s2) * cfg.control_period_s
    tol = 1e-9
    resets = _first_commands_after_rollovers(bundle, True)
    keeps = _first_commands_after_rollovers(bundle, False)
    assert len(resets) >= 3 and len(keeps) >= 3
    # Re-anchored: the sim robot stands still at its new pose, so the first command starts from rest.
    assert all((np.abs(first) <= a_dt + tol).all() for _, first in resets), resets[0]
    # Kept: relative to the last command sent, which was moving (the robot would have kept that velocity).
    assert all((np.abs(first - last) <= a_dt + tol).all() for last, first in keeps)
    assert any((np.abs(first) > a_dt + tol).any() for _, first in keeps), "the test would not tell them apart"


@pytest.mark.parametrize("value", [True, False])
def test_the_node_parameter_reaches_the_session(reach_bundle: Path, value: bool) -> None:
    dep = build_deployment({"bundle_dir": str(reach_bundle), "robot_resets_on_done": value})
    assert dep.session.robot_resets_on_done is value
