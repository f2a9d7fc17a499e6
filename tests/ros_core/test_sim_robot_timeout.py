"""The simulated robot's command timeout without ROS: a fake clock for the timer, sim time for the robot."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from robot_rl.safety.diagnostics import OK, WARN
from ros_nodes.core.command_timeout import CommandTimeout, default_command_timeout_s
from ros_nodes.core.sim_robot import SimRobot

PANDA = "robot_rl/PandaReach-v0"
CARTPOLE = "robot_rl/CartPoleBalance-v0"
DT = 0.05  # PandaReach's control period (s)
TIMEOUT = 0.15  # three periods


# ---------------------------------------------------------------------------------------------- the timer alone
def test_timer_latches_once_per_quiet_spell_and_a_fresh_command_clears_it() -> None:
    t = CommandTimeout(0.1)
    assert not t.check(0.0) and not t.check(100.0)  # nothing to time out before the first command
    assert t.age_s(5.0) is None and t.timeouts == 0
    t.fresh(1.0)
    assert not t.check(1.05) and not t.timed_out
    assert t.age_s(1.05) == pytest.approx(0.05)
    assert t.check(1.1)  # exactly the timeout after the command: hold
    assert t.timed_out and t.timed_out_at_s == pytest.approx(1.1)
    assert not t.check(1.2) and not t.check(5.0)  # latched: reported once, however long it lasts
    assert t.timeouts == 1 and t.timed_out
    t.fresh(5.0)
    assert not t.timed_out and t.timed_out_at_s is None and not t.check(5.05)
    assert t.check(5.3) and t.timeouts == 2
    t.fresh(6.0)
    assert not t.check(5.0)  # a clock running backwards does not time out by itself


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
def test_timer_and_default_refuse_nonsense(bad: float) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        CommandTimeout(bad)
    with pytest.raises(ValueError, match="command_period_s"):
        default_command_timeout_s(bad)


def test_default_timeout_is_three_periods_with_a_floor() -> None:
    assert default_command_timeout_s(0.05) == pytest.approx(0.15)  # 20 Hz reach
    assert default_command_timeout_s(0.02) == pytest.approx(0.1)  # 50 Hz cart-pole: the 0.1 s floor
    assert default_command_timeout_s(0.2) == pytest.approx(0.6)


# ---------------------------------------------------------------------------------------------- the robot
@pytest.fixture
def panda() -> Iterator[SimRobot]:
    robot = SimRobot(PANDA, episode_steps=400, command_timeout_s=TIMEOUT)
    yield robot
    robot.close()


def _steps_until_hold(robot: SimRobot, limit: int = 50, each: np.ndarray | list[float] | None = None) -> int:
    """Steps taken with the command in force before the timeout hold (calls `apply_command(each)` per step)."""
    for n in range(limit):
        if each is not None:
            robot.apply_command(each)
        robot.step()
        if robot.holding_on_timeout:
            return n  # this step already ran the hold
    raise AssertionError(f"no timeout hold within {limit} steps: {robot.command_diagnostics()}")


def test_velocity_timeout_holds_zero_and_the_joints_stop(panda: SimRobot) -> None:
    v = np.array([1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0])
    target_at_command = panda.env.commanded_target
    assert panda.apply_command(v)
    steps = _steps_until_hold(panda)
    assert steps == round(TIMEOUT / DT)  # the stale command ran for exactly the timeout, then the hold
    np.testing.assert_array_equal(panda.current_command, np.zeros(7))
    assert not panda.has_command and panda.command_stats.timeouts == 1
    held_target = panda.env.commanded_target
    # The servo's target travelled at most the timeout's worth of the stale velocity, then froze.
    assert np.all(np.abs(held_target - target_at_command) <= np.abs(v) * TIMEOUT + 1e-9)
    for _ in range(30):  # 1.5 s more: a stale 1 rad/s would have moved every joint by 1.5 rad
        snap = panda.step()
    np.testing.assert_array_equal(panda.env.commanded_target, held_target)
    np.testing.assert_allclose(snap.positions, held_target, atol=0.02)  # settled on the frozen target
    assert np.abs(snap.velocities).max() < 0.05
    assert panda.command_stats.timeouts == 1  # one quiet spell, one timeout


def test_a_fresh_command_resumes_and_a_new_quiet_spell_counts_again(panda: SimRobot) -> None:
    v = np.full(7, 0.5)
    panda.apply_command(v)
    _steps_until_hold(panda)
    for _ in range(5):
        panda.step()
    q0 = panda.latest.positions.copy()
    assert panda.apply_command(v)
    assert not panda.holding_on_timeout and panda.has_command
    np.testing.assert_allclose(panda.current_command, v)
    for _ in range(3):
        snap = panda.step()
    assert np.all(snap.positions - q0 > 0.02)  # moving again (+0.5 rad/s on every joint)
    _steps_until_hold(panda)
    assert panda.command_stats.timeouts == 2


def test_rejected_commands_do_not_refresh_the_timer(panda: SimRobot) -> None:
    assert panda.apply_command(np.full(7, 0.5))
    garbage: list[list[float]] = [[float("nan")] * 7, [0.5] * 6, [float("inf")] * 7]
    for n in range(10):
        assert not panda.apply_command(garbage[n % len(garbage)])
        panda.step()
        if panda.holding_on_timeout:
            break
    # A garbage stream times out exactly like silence would.
    assert n == round(TIMEOUT / DT) and panda.command_stats.timeouts == 1
    stats = panda.command_stats
    assert stats.accepted == 1 and stats.rejected == n + 1 and stats.rejected_since_accepted == n + 1
    np.testing.assert_array_equal(panda.current_command, np.zeros(7))
    diag = panda.command_diagnostics()
    assert diag.level == WARN
    assert "holding: no valid command" in diag.message and "rejected" in diag.message
    assert diag.values["timeouts"] == "1" and diag.values["holding_on_timeout"] == "true"
    assert float(diag.values["last_command_age_s"]) == pytest.approx(panda.time_s, abs=1e-3)  # the command came at 0
    assert int(diag.values["rejected/non_finite"]) + int(diag.values["rejected/length"]) == stats.rejected


def test_diagnostics_are_ok_while_commands_flow(panda: SimRobot) -> None:
    diag = panda.command_diagnostics()
    assert diag.level == OK and "no command received yet" in diag.message
    for _ in range(10):  # no command at all: nothing to time out, the robot holds anyway
        panda.step()
    assert panda.command_stats.timeouts == 0 and not panda.holding_on_timeout
    for _ in range(20):
        assert panda.apply_command(np.full(7, 0.1))
        panda.step()
    diag = panda.command_diagnostics()
    assert diag.level == OK and "executing commands" in diag.message
    assert diag.values["timeouts"] == "0" and diag.values["command_timeout_s"] == "0.15"


def test_reset_during_a_timeout_keeps_holding_until_a_fresh_command(panda: SimRobot) -> None:
    panda.apply_command(np.full(7, 0.5))
    _steps_until_hold(panda)
    panda.reset()
    for _ in range(3):
        panda.step()
    assert panda.holding_on_timeout and panda.command_diagnostics().level == WARN
    assert panda.apply_command(np.full(7, 0.5))
    assert not panda.holding_on_timeout and panda.command_diagnostics().level == OK


def test_position_timeout_holds_the_last_commanded_target() -> None:
    robot = SimRobot(PANDA, env_kwargs={"interface": "joint_position"}, command_timeout_s=TIMEOUT)
    try:
        q0 = robot.latest.positions.copy()
        for _ in range(5):  # before any command: hold at the measured position
            robot.step()
        np.testing.assert_allclose(robot.current_command, q0, atol=1e-9)
        target = q0 + 0.1
        assert robot.apply_command(target)
        _steps_until_hold(robot)
        # The hold is the last commanded target (not the measured position mid-motion, not zero).
        np.testing.assert_allclose(robot.current_command, target, atol=1e-9)
        for _ in range(20):
            snap = robot.step()
        np.testing.assert_allclose(snap.positions, target, atol=0.01)
        assert robot.command_stats.timeouts == 1
    finally:
        robot.close()


def test_effort_timeout_holds_zero_effort() -> None:
    robot = SimRobot(CARTPOLE, command_timeout_s=0.1)
    try:
        assert robot.command_interface == "effort"
        assert robot.apply_command([5.0])
        n = _steps_until_hold(robot)
        assert n == round(0.1 / robot.control_dt_s)
        np.testing.assert_array_equal(robot.current_command, [0.0])
        assert robot.command_stats.timeouts == 1
    finally:
        robot.close()


def test_timeout_shorter_than_a_period_is_refused_and_none_means_off() -> None:
    with pytest.raises(ValueError, match="one control period"):
        SimRobot(PANDA, command_timeout_s=0.01)
    with pytest.raises(ValueError, match="one control period"):
        SimRobot(PANDA, command_timeout_s=float("nan"))
    robot = SimRobot(PANDA)  # no timeout: the caller steps and commands by hand
    try:
        robot.apply_command(np.full(7, 0.2))
        for _ in range(10):
            robot.step()
        assert not robot.holding_on_timeout and robot.has_command and robot.command_age_s is None
        assert robot.command_diagnostics().values["command_timeout_s"] == "off"
    finally:
        robot.close()


def test_commands_between_a_reset_and_the_first_step_are_the_old_episodes_and_dropped() -> None:
    """The node resets the robot when it ends an episode; the controller, not yet told, still sends a command
    computed from the old episode's last state. Accepted, it would drive the fresh episode's first period."""
    robot = SimRobot(PANDA, seed=0)
    moving = np.full(7, 0.5)
    assert robot.apply_command(moving)
    robot.step()
    robot.reset(drop_commands_until_step=True)
    assert not robot.apply_command(moving)
    stats = robot.command_stats
    assert stats.rejected_by_reason["before_episode"] == 1 and "previous episode" in stats.last_reject_reason
    snap = robot.step()
    assert np.allclose(robot.current_command, 0.0)  # the first period held
    assert np.abs(snap.velocities).max() < 0.05
    assert robot.apply_command(moving)  # after the first step the controller has seen this episode
    robot.reset()  # the default (direct use, tests): commands are taken at once
    assert robot.apply_command(moving)
