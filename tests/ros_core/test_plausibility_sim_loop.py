"""The deployed control step driving the simulated Panda (ROS-free), across episode roll-overs: the sim's normal
readings never trip the plausibility link, the robot stays inside its limits (velocity interface: integrated by the
simulator), and no command steps beyond the limits relative to the previous command — also across roll-over
(the sim resets its pose; rate limits stay relative to the last command sent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robot_rl.safety.links import PLAUSIBILITY_KEYS
from ros_nodes.core.control_step import ControlStep, HumanInput
from ros_nodes.core.deployment import build_deployment
from ros_nodes.core.episode_session import EpisodeSession
from ros_nodes.core.sim_robot import SimRobot

PANDA = "robot_rl/PandaReach-v0"


def _feed(step: ControlStep, snap: object, t: float) -> None:
    assert (
        step.assembler.update_joint_state(
            snap.joint_names,  # type: ignore[attr-defined]
            snap.positions,  # type: ignore[attr-defined]
            snap.velocities,  # type: ignore[attr-defined]
            arrival_s=t,
            header_stamp_s=t,
        )
        is None
    )
    for key, value in snap.observations.items():  # type: ignore[attr-defined]
        if key in step.assembler.layout.topic_keys:
            assert step.assembler.update_observation(key, value, arrival_s=t) is None


@pytest.mark.parametrize("bundle_name", ["reach_bundle", "reach_position_bundle"])
def test_sim_loop_with_rollovers_is_plausible_and_inside_the_limits(
    bundle_name: str, request: pytest.FixtureRequest
) -> None:
    bundle: Path = request.getfixturevalue(bundle_name)
    step = build_deployment({"bundle_dir": str(bundle)}).step
    cfg = step.chain.config
    lo, hi = np.asarray(cfg.position_lower_rad), np.asarray(cfg.position_upper_rad)
    vmax, amax = np.asarray(cfg.velocity_limit_rad_s), np.asarray(cfg.acceleration_limit_rad_s2)
    period = cfg.control_period_s
    robot = SimRobot(PANDA, episode_steps=40)
    try:
        snap = robot.latest
        _feed(step, snap, snap.time_s)
        step.reset()
        m = cfg.position_margin_rad
        # The reset anchors a never-commanded chain at the measured position: the first "previous command".
        prev: np.ndarray | None = np.clip(snap.positions[: cfg.n_joints], lo + m, hi - m)
        v_prev = np.zeros(cfg.n_joints)
        rollovers = 0
        for _ in range(200):
            t = snap.time_s
            _feed(step, snap, t)
            rec = step.tick(t)
            a = rec.executed_action
            assert np.isfinite(a).all()
            if cfg.command_interface == "position" and prev is not None:
                v = (a - prev) / period
                assert (np.abs(v) <= vmax * (1 + 1e-9) + 1e-9).all()
                if v.any():
                    assert (np.abs(v - v_prev) <= amax * period * (1 + 1e-9) + 1e-6).all()
                v_prev = v
            if cfg.command_interface == "position":
                prev = a.copy()
            assert robot.apply_command(a)
            snap = robot.step()
            # Inside the URDF limits (a little give for the simulator's soft joint limits).
            assert (snap.positions[: cfg.n_joints] >= lo - 0.02).all() and (
                snap.positions[: cfg.n_joints] <= hi + 0.02
            ).all()
            if snap.episode_over:
                snap = robot.reset()
                step.reset()  # the roll-over, as EpisodeSession does it
                rollovers += 1
        counters = step.chain.counters
        assert rollovers >= 4
        assert all(counters[k] == 0 for k in PLAUSIBILITY_KEYS), counters
        assert counters["held"] <= 2, counters  # at most the first ticks, never a sensor fault
    finally:
        robot.close()


def test_takeover_hand_back_and_rollover_continue_from_the_last_command_sent(reach_position_bundle: Path) -> None:
    """A human drives (far), hands back, episodes roll over every 7 steps, and a 10 rad reading arrives at a
    roll-over: every executed target stays within the velocity/acceleration limits of the previous one."""
    step = build_deployment({"bundle_dir": str(reach_position_bundle)}).step
    session = EpisodeSession(step, max_steps=7)
    cfg = step.chain.config
    vmax, amax = np.asarray(cfg.velocity_limit_rad_s), np.asarray(cfg.acceleration_limit_rad_s2)
    period = cfg.control_period_s
    joints = list(cfg.joint_names)
    home = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
    far = home.copy()
    far[0] = 10.0

    def feed(q: np.ndarray, t: float) -> None:
        assert step.assembler.update_joint_state(joints, q, np.zeros(7), arrival_s=t) is None
        for key in step.assembler.layout.topic_keys:
            size = step.assembler.layout.sizes[step.assembler.layout.keys.index(key)]
            assert step.assembler.update_observation(key, np.full(size, 0.1), arrival_s=t) is None

    feed(home, 0.0)
    session.begin()
    m = cfg.position_margin_rad
    lo, hi = np.asarray(cfg.position_lower_rad) + m, np.asarray(cfg.position_upper_rad) - m
    outputs, sources = [np.clip(home, lo, hi)], []  # the activation's anchor: the robot rests there
    q = home.copy()
    for i in range(60):
        t = (i + 1) * period
        reading = far if 20 <= i < 26 else q  # an implausible reading across a roll-over (steps 21 and 28)
        feed(reading, t)
        engaged = 5 <= i < 15
        human = HumanInput(engaged, home + 2.0 if engaged else None, t if engaged else None)
        rec = session.tick(t, human).record
        outputs.append(rec.executed_action.copy())
        sources.append(rec.source)
        q = rec.executed_action.copy()  # an ideal position servo
    assert "human" in sources and sources[-1] == "policy" and len(session.episodes) >= 7
    v_prev = np.zeros(7)
    for k in range(1, len(outputs)):
        v = (outputs[k] - outputs[k - 1]) / period
        assert (np.abs(v) <= vmax * (1 + 1e-9) + 1e-9).all(), k
        if v.any():  # a stop (the same target again) is always allowed
            assert (np.abs(v - v_prev) <= amax * period * (1 + 1e-9) + 1e-6).all(), k
        v_prev = v
    assert step.chain.counters["plausibility_position"] >= 1
