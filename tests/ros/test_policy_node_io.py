"""Policy node outputs beyond the command topic: trajectory messages, /diagnostics, and the joystick teleop path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import (  # noqa: E402
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rosutil import ros_context, spin_for, spin_until  # noqa: E402
from sensor_msgs.msg import JointState, Joy  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from robot_rl.safety import LINK_NAMES  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.sim_robot_node import SimRobotNode  # noqa: E402
from ros_nodes.teleop_node import TeleopNode  # noqa: E402

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def _params(**kw: Any) -> list[Parameter[Any]]:
    return [Parameter(k, value=v) for k, v in kw.items()]


def test_trajectory_and_diagnostics_are_published(ros_env: int, reach_bundle: Path) -> None:
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(context=ctx, parameter_overrides=_params(env_id="robot_rl/PandaReach-v0"))
        policy = PolicyNode(
            context=ctx, parameter_overrides=_params(bundle_dir=str(reach_bundle), publish_trajectory=True)
        )
        probe = rclpy.create_node("probe", context=ctx)
        diags: list[DiagnosticArray] = []
        trajs: list[JointTrajectory] = []
        probe.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        probe.create_subscription(JointTrajectory, "/velocity_controller/joint_trajectory", trajs.append, RELIABLE)
        for node in (robot, policy, probe):
            executor.add_node(node)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert spin_until(executor, lambda: len(diags) >= 2, 5.0)
        names = {s.name for d in diags for s in d.status}
        assert "policy_node/loop" in names
        assert {f"policy_node/safety/{link}" for link in LINK_NAMES} <= names, names  # every link reports
        loop = next(s for d in diags for s in d.status if s.name == "policy_node/loop")
        assert any(kv.key == "ticks" for kv in loop.values)
        # trajectories are only meaningful for position commands: a velocity deployment publishes none
        assert trajs == []


def test_position_deployment_publishes_joint_trajectories(ros_env: int, reach_position_bundle: Path) -> None:
    with ros_context() as (ctx, executor):
        policy = PolicyNode(
            context=ctx, parameter_overrides=_params(bundle_dir=str(reach_position_bundle), publish_trajectory=True)
        )
        probe = rclpy.create_node("probe", context=ctx)
        js = probe.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        obs_pubs = {
            k: probe.create_publisher(Float64MultiArray, f"/observations/{k}", qos_profile_sensor_data)
            for k in ("ee_pos", "ee_quat", "target_pos", "target_rel")
        }
        sizes = {"ee_pos": 3, "ee_quat": 4, "target_pos": 3, "target_rel": 3}
        trajs: list[JointTrajectory] = []
        probe.create_subscription(JointTrajectory, "/position_controller/joint_trajectory", trajs.append, RELIABLE)
        executor.add_node(policy)
        executor.add_node(probe)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS
        joints = [f"panda_joint{i}" for i in range(1, 8)]
        home = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            js.publish(JointState(name=joints, position=home, velocity=[0.0] * 7))
            for k, pub in obs_pubs.items():
                pub.publish(Float64MultiArray(data=[0.1] * sizes[k]))
            spin_for(executor, 0.02)
        assert len(trajs) >= 5
        last = trajs[-1]
        assert list(last.joint_names) == joints and len(last.points) == 1
        lower = policy._dep.safety_config.position_lower_rad
        upper = policy._dep.safety_config.position_upper_rad
        assert all(lo <= p <= hi for p, lo, hi in zip(last.points[0].positions, lower, upper, strict=True))
        assert last.points[0].time_from_start.nanosec == int(1e9 / policy._dep.control_hz)


def test_joystick_deadman_takes_over_through_the_teleop_node(ros_env: int, reach_bundle: Path) -> None:
    joints = [f"panda_joint{i}" for i in range(1, 8)]
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(context=ctx, parameter_overrides=_params(env_id="robot_rl/PandaReach-v0"))
        policy = PolicyNode(context=ctx, parameter_overrides=_params(bundle_dir=str(reach_bundle)))
        teleop = TeleopNode(
            context=ctx,
            parameter_overrides=_params(
                joints=joints, axes=[0, -1, -1, -1, -1, -1, -1], scale_rad_s=[0.5] * 7, deadman_button=4
            ),
        )
        probe = rclpy.create_node("joy_probe", context=ctx)
        joy = probe.create_publisher(Joy, "/joy", 10)
        commands: list[list[float]] = []
        probe.create_subscription(
            Float64MultiArray, "/velocity_controller/commands", lambda m: commands.append(list(m.data)), RELIABLE
        )
        for node in (robot, policy, teleop, probe):
            executor.add_node(node)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS
        spin_for(executor, 0.5)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:  # dead-man held, stick fully deflected on axis 0
            joy.publish(Joy(axes=[1.0, 0.0, 0.0, 0.0, 0.0], buttons=[0, 0, 0, 0, 1]))
            spin_for(executor, 0.02)
        assert policy.intervention_steps > 0
        assert commands[-1][0] == pytest.approx(0.5) and commands[-1][1:] == [0.0] * 6
        joy.publish(Joy(axes=[1.0, 0.0, 0.0, 0.0, 0.0], buttons=[0, 0, 0, 0, 0]))  # released: policy again
        # the control thread ticks on its own: a tick may run before the release has crossed teleop → policy node
        spin_for(executor, 0.3)
        steps = policy.intervention_steps
        spin_for(executor, 0.5)
        assert policy.intervention_steps == steps


def test_safety_parameters_are_read_only_while_active(ros_env: int, cartpole_lqr_bundle: Path) -> None:
    with ros_context() as (ctx, executor):
        policy = PolicyNode(context=ctx, parameter_overrides=_params(bundle_dir=str(cartpole_lqr_bundle)))
        executor.add_node(policy)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS
        result = policy.set_parameters([Parameter("safety.effort_limit", value=[1000.0])])[0]
        assert not result.successful and "read-only" in result.reason
        assert policy.set_parameters([Parameter("control_hz", value=500.0)])[0].successful is False
        assert policy._dep.safety_config.effort_limit == (60.0,)  # the limits in force did not change
        assert policy.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        # inactive: accepted, and applied only by the next configure (after cleanup)
        assert policy.set_parameters([Parameter("safety.effort_limit", value=[30.0])])[0].successful
        assert policy._dep.safety_config.effort_limit == (60.0,)
        assert policy.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy._dep.safety_config.effort_limit == (30.0,)
