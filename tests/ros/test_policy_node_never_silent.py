"""Issue 11 reproductions over DDS: in the topic-triggered mode bad or missing joint states give published holds
(never silence), and `/diagnostics` says why; a SIGINT while the sim robot starts exits cleanly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from rosutil import ros_context, spin_for  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from ros_nodes.policy_node import PolicyNode  # noqa: E402

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
CART = ["slider_to_cart", "cart_to_pole"]
HOLD = [0.0]
"""The effort interface's hold."""
ERROR_OR_WARN = (b"\x01", b"\x02")


class Robot(Node):
    """Plays the robot's joint-state publisher and the controller (records commands and /diagnostics)."""

    def __init__(self, ctx: Any) -> None:
        super().__init__("fake_robot", context=ctx)
        self.js = self.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        self.commands: list[list[float]] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.create_subscription(
            Float64MultiArray, "/effort_controller/commands", lambda m: self.commands.append(list(m.data)), RELIABLE
        )
        self.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)

    def publish(self, names: list[str], pos: list[float], vel: list[float]) -> None:
        msg = JointState(name=names, position=pos, velocity=vel)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.js.publish(msg)

    def latest(self, name: str) -> DiagnosticStatus | None:
        for arr in reversed(self.diagnostics):
            for s in arr.status:
                if s.name == name:
                    return s
        return None


def _node(ctx: Any, bundle: Path) -> PolicyNode:
    params = [Parameter("bundle_dir", value=str(bundle)), Parameter("trigger", value="joint_states")]
    return PolicyNode(context=ctx, parameter_overrides=params)


def _stream(executor: Any, robot: Robot, seconds: float, names: list[str], pos: list[float], vel: list[float]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        robot.publish(names, pos, vel)
        spin_for(executor, 0.01)


def _start(executor: Any, node: PolicyNode, robot: Robot) -> None:
    executor.add_node(node)
    executor.add_node(robot)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node._last_error
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, node._last_error
    # A good stream first: the policy drives (a non-zero force on a tilted pole).
    _stream(executor, robot, 0.5, CART, [0.0, 0.05], [0.0, 0.0])
    assert robot.commands and robot.commands[-1] != HOLD, robot.commands[-5:]


def _wait_for_diagnostics(executor: Any, robot: Robot, seconds: float, **stream: Any) -> None:
    """Keep the bad condition up while at least two fresh /diagnostics arrays arrive."""
    robot.diagnostics.clear()
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(robot.diagnostics) < 2:
        if stream:
            robot.publish(**stream)
        spin_for(executor, 0.01)
    assert len(robot.diagnostics) >= 2, "no /diagnostics"


@pytest.mark.parametrize(
    ("names", "pos", "vel", "kind"),
    [
        (CART, [0.0, float("nan")], [0.0, 0.0], "joint_states/non_finite"),
        (CART, [0.0], [0.0, 0.0], "joint_states/length"),
        (CART[::-1] + CART[:1], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], "joint_states/duplicate"),
        (["not_a_joint", "nor_this"], [0.0, 0.0], [0.0, 0.0], "joint_states/foreign"),
        (CART, [0.0, 0.05], [], "joint_states/no_velocity"),  # positions only; the cart-pole observes velocity
    ],
)
def test_bad_joint_states_in_topic_mode_publish_holds_and_say_why(
    ros_env: int, cartpole_lqr_bundle: Path, names: list[str], pos: list[float], vel: list[float], kind: str
) -> None:
    with ros_context() as (ctx, executor):
        node, robot = _node(ctx, cartpole_lqr_bundle), Robot(ctx)
        _start(executor, node, robot)
        _stream(executor, robot, 1.0, names, pos, vel)  # the bad input lasts
        robot.commands.clear()
        _stream(executor, robot, 0.5, names, pos, vel)
        assert len(robot.commands) >= 3, "the node went silent on bad input"
        assert all(c == HOLD for c in robot.commands), robot.commands[-5:]
        _wait_for_diagnostics(executor, robot, 10.0, names=names, pos=pos, vel=vel)
        assert node._dep is not None and node._dep.step.assembler.rejected.get(kind, 0) > 0
        status = robot.latest("policy_node/input")
        assert status is not None and status.level in ERROR_OR_WARN, status
        assert kind in status.message or kind in {kv.key.removeprefix("rejected/") for kv in status.values}
        if kind == "joint_states/no_velocity":
            assert status.level == b"\x02" and "velocity[] is empty" in status.message, status.message
        # Good readings again: the policy drives again.
        robot.commands.clear()
        _stream(executor, robot, 0.5, CART, [0.0, 0.05], [0.0, 0.0])
        assert robot.commands and robot.commands[-1] != HOLD
        assert node._active


def test_a_stream_that_stops_gives_holds_from_the_watchdog_timer(ros_env: int, cartpole_lqr_bundle: Path) -> None:
    with ros_context() as (ctx, executor):
        node, robot = _node(ctx, cartpole_lqr_bundle), Robot(ctx)
        _start(executor, node, robot)
        spin_for(executor, 1.0)  # the producer stops
        robot.commands.clear()
        spin_for(executor, 0.5)
        assert len(robot.commands) >= 3, "the node went silent when its input stopped"
        assert all(c == HOLD for c in robot.commands), robot.commands[-5:]
        _wait_for_diagnostics(executor, robot, 10.0)
        status = robot.latest("policy_node/watchdog")
        assert status is not None and status.level == b"\x02" and "standing in" in status.message, status
        ticks = {kv.key: kv.value for kv in status.values}["watchdog_ticks"]
        assert int(ticks) >= 3
        assert node.loop_summary()["watchdog_ticks"] >= 3
        # The stream resumes: the node ticks on it again and the policy drives.
        robot.commands.clear()
        _stream(executor, robot, 0.5, CART, [0.0, 0.05], [0.0, 0.0])
        assert robot.commands and robot.commands[-1] != HOLD


def test_a_stalled_control_thread_in_timer_mode_is_stood_in_for_by_the_watchdog(
    ros_env: int, cartpole_lqr_bundle: Path
) -> None:
    with ros_context() as (ctx, executor):
        params = [Parameter("bundle_dir", value=str(cartpole_lqr_bundle)), Parameter("trigger", value="timer")]
        node, robot = PolicyNode(context=ctx, parameter_overrides=params), Robot(ctx)
        _start(executor, node, robot)
        node._stop.set()  # the control thread stops ticking (a hung inference would look the same)
        assert node._thread is not None
        node._thread.join(5.0)
        _stream(executor, robot, 1.0, CART, [0.0, 0.05], [0.0, 0.0])
        robot.commands.clear()
        _stream(executor, robot, 0.5, CART, [0.0, 0.05], [0.0, 0.0])
        assert len(robot.commands) >= 3, "the node went silent when its control thread stopped"
        assert node.loop_summary()["watchdog_ticks"] >= 3
        _wait_for_diagnostics(executor, robot, 10.0, names=CART, pos=[0.0, 0.05], vel=[0.0, 0.0])
        status = robot.latest("policy_node/watchdog")
        assert status is not None and status.level == b"\x02" and "standing in" in status.message, status


def test_policy_errors_are_counted_on_diagnostics(ros_env: int, cartpole_lqr_bundle: Path) -> None:
    with ros_context() as (ctx, executor):
        node, robot = _node(ctx, cartpole_lqr_bundle), Robot(ctx)
        _start(executor, node, robot)
        assert node._dep is not None

        class Broken:
            chunk_size = 1

            def plan(self, observation: Any) -> Any:
                raise RuntimeError("inference failed on purpose")

        node._dep.step.policy = Broken()
        robot.commands.clear()
        _stream(executor, robot, 0.5, CART, [0.0, 0.05], [0.0, 0.0])
        assert len(robot.commands) >= 3 and all(c == HOLD for c in robot.commands), robot.commands[-5:]
        _wait_for_diagnostics(executor, robot, 10.0, names=CART, pos=[0.0, 0.05], vel=[0.0, 0.0])
        status = robot.latest("policy_node/policy")
        assert status is not None and status.level == b"\x02", status
        assert "inference failed on purpose" in status.message
        assert int({kv.key: kv.value for kv in status.values}["policy_errors"]) >= 3


def test_sigint_while_the_sim_robot_starts_exits_cleanly(ros_env: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import ros_nodes.sim_robot_node as sim_robot_node

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # what SIGINT raises while the physics engine loads

    monkeypatch.setattr(sim_robot_node, "SimRobot", interrupted)
    # Before the fix rclpy's context shutdown called destroy_node() on the half-built node: AttributeError '_stop'.
    assert sim_robot_node.main([]) == 0
    assert not rclpy.ok()
