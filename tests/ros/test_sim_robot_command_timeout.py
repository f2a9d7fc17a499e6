"""The simulated robot's command timeout over DDS on loopback: the policy node stops, the robot holds (issue 11)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosutil import ros_context, spin_until  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.sim_robot_node import COMMAND_QOS, SimRobotNode  # noqa: E402

WARN = b"\x01"


def _params(**kw: Any) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in kw.items()]


def _command_status(arrays: list[DiagnosticArray]) -> list[Any]:
    return [s for a in arrays for s in a.status if s.name == "sim_robot/commands"]


def test_robot_holds_when_the_policy_node_stops_publishing(ros_env: int, reach_bundle: Path) -> None:
    with ros_context() as (ctx, executor):
        # A long episode: no reset (which would move the joints to a new start pose) inside the test's window.
        robot = SimRobotNode(
            context=ctx, parameter_overrides=_params(env_id="robot_rl/PandaReach-v0", episode_steps=5000)
        )
        policy = PolicyNode(context=ctx, parameter_overrides=_params(bundle_dir=str(reach_bundle), trigger="timer"))
        probe = rclpy.create_node("probe", context=ctx)
        states: list[JointState] = []
        diagnostics: list[DiagnosticArray] = []
        probe.create_subscription(JointState, "/joint_states", states.append, qos_profile_sensor_data)
        probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
        for node in (robot, policy, probe):
            executor.add_node(node)
        core = robot.robot
        dt, timeout = core.control_dt_s, robot.command_timeout_s
        assert timeout == pytest.approx(3 * dt)  # the default: three control periods of the 20 Hz reach task
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert spin_until(executor, lambda: core.command_stats.accepted >= 30, 30.0), policy.loop_summary()
        driven = np.array([m.velocity for m in states[-10:]])
        assert np.abs(driven).max() > 0.05, driven  # the (random) policy really moves the arm

        # The policy node's control thread stops as if its process had been killed: no hold is published (its
        # watchdog timer, which would otherwise publish holds in the thread's place, dies with it).
        policy._stop.set()
        assert policy._watchdog is not None
        policy._watchdog.disarm()
        assert policy._thread is not None
        policy._thread.join(5.0)
        assert spin_until(executor, lambda: core.holding_on_timeout, 10.0), core.command_diagnostics()
        with robot._lock:
            watchdog = core.command_timeout
            assert watchdog is not None
            last_s, held_at_s = watchdog.last_command_s, watchdog.timed_out_at_s
            held_target = core.env.commanded_target
            accepted = core.command_stats.accepted  # (a command still queued at the stop may land after it)
        assert last_s is not None and held_at_s is not None
        # The stale command ran for the timeout, and the hold came no later than one period after it (sim time).
        assert timeout - 1e-9 <= held_at_s - last_s <= timeout + dt + 1e-9
        np.testing.assert_array_equal(core.current_command, np.zeros(7))

        # Let the servo settle on its frozen target, then watch the joints for a second of sim time.
        assert spin_until(executor, lambda: core.time_s > held_at_s + 1.5, 30.0)
        first = len(states)
        assert spin_until(executor, lambda: core.time_s > held_at_s + 2.5 and len(states) >= first + 10, 30.0)
        window = states[first:]
        positions = np.array([m.position for m in window])
        velocities = np.array([m.velocity for m in window])
        # A stale velocity of even 0.05 rad/s would move a joint 0.05 rad in this second; the robot stays put.
        assert np.ptp(positions, axis=0).max() < 0.01, np.ptp(positions, axis=0)
        assert np.abs(velocities).max() < 0.05
        with robot._lock:
            np.testing.assert_array_equal(core.env.commanded_target, held_target)
        assert core.command_stats.accepted == accepted and core.command_stats.timeouts >= 1

        # /diagnostics says so: WARN, with the age of the last command.
        assert spin_until(executor, lambda: any(s.level == WARN for s in _command_status(diagnostics)[-1:]), 10.0), (
            _command_status(diagnostics)[-1:]
        )
        status = _command_status(diagnostics)[-1]
        values = {kv.key: kv.value for kv in status.values}
        assert "no valid command" in status.message and float(values["last_command_age_s"]) > timeout
        assert int(values["timeouts"]) >= 1 and values["holding_on_timeout"] == "true"

        # A fresh command (here from a probe, as a restarted controller would send) resumes.
        cmd = probe.create_publisher(Float64MultiArray, "/velocity_controller/commands", COMMAND_QOS)

        def resumed() -> bool:
            cmd.publish(Float64MultiArray(data=[0.0] * 7))
            return not core.holding_on_timeout

        assert spin_until(executor, resumed, 10.0)
        assert core.command_stats.accepted > accepted
