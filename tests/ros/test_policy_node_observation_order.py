"""A robot step's unstamped observations are taken with its joint state, and an episode's first tick sees that
episode's observations, over a real rclpy executor.

The task's observations (`/observations/<key>`, Float64MultiArray) carry no stamp: only the order in which the
policy node takes them says which robot step they belong to. The simulated robot publishes a step's observations
before its joint state (which ticks the policy) and its `episode_done`; rclpy's executor takes the messages one
wait found ready in the order the subscriptions were created. With `/joint_states` and `episode_done` subscribed
first, a PandaPush deployment paired this step's joints with the previous step's end effector and puck (76% of
ticks in one process, 19% across processes) and began every episode from the previous episode's puck and goal;
its behaviour-cloned bundle succeeded in 0 of 17 episodes over ROS against 30% offline.

Here a stand-in robot publishes each step as one burst while the executor is not spinning, so a single wait finds
the whole burst ready — the case that went wrong — and every message carries its step number k (joints moved by
k mrad, every task entry equal to k).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosutil import ros_context, spin_until  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402

from robot_rl.data.mcap_reader import list_episodes, read_episode  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
TASK = {"ee_pos": 3, "ee_quat": 4, "target_pos": 3, "target_rel": 3}
"""The reach bundle's task entries (after joint_pos [7] and joint_vel [7]), in observation order."""


def _params(**kw: Any) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in kw.items()]


def test_a_steps_observations_are_taken_before_its_joint_state_and_its_episode_done(
    ros_env: int, reach_bundle: Path, tmp_path: Path
) -> None:
    record = tmp_path / "episodes"
    with ros_context() as (ctx, executor):
        node = PolicyNode(
            context=ctx,
            parameter_overrides=_params(
                bundle_dir=str(reach_bundle), record_dir=str(record), robot_resets_on_done=True, trigger="joint_states"
            ),
        )
        robot = rclpy.create_node("stand_in_robot", context=ctx)
        obs_pubs = {
            k: robot.create_publisher(Float64MultiArray, f"/observations/{k}", qos_profile_sensor_data) for k in TASK
        }
        joint_pub = robot.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        done_pub = robot.create_publisher(Bool, "/robot_rl/episode_done", 10)
        executor.add_node(node)
        executor.add_node(robot)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node._last_error
        # The contract, structurally: every observation topic is subscribed before the joint state and the signals.
        topics = [s.topic_name for s in node.subscriptions]
        last_obs = max(i for i, t in enumerate(topics) if t.startswith("/observations/"))
        for signal in ("/joint_states", "/robot_rl/episode_done", "/robot_rl/is_success", "/robot_rl/terminated"):
            assert topics.index(signal) > last_obs, topics
        assert spin_until(executor, lambda: all(p.get_subscription_count() for p in (*obs_pubs.values(), joint_pub)))
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, node._last_error

        def burst(k: int, done: bool = False) -> None:
            """One robot step, published the simulated robot's way: observations, joint state, then the done."""
            for key, size in TASK.items():
                obs_pubs[key].publish(Float64MultiArray(data=[float(k)] * size))
            msg = JointState(name=JOINTS, position=(HOME + 1e-3 * k).tolist(), velocity=[0.0] * len(JOINTS))
            msg.header.stamp = node.get_clock().now().to_msg()
            joint_pub.publish(msg)
            if done:
                done_pub.publish(Bool(data=True))
            time.sleep(0.3)  # delivered before the executor waits again: one wait finds the whole burst ready
            expected = node.received["joint_states"] + 1
            assert spin_until(executor, lambda: node.received["joint_states"] >= expected)
            spin_until(executor, lambda: False, timeout_s=0.1)  # whatever else the burst held

        for k in (1, 2):
            burst(k)
        burst(3, done=True)  # the episode's last step: the robot re-initializes after it
        burst(4)  # the new episode's first step
        burst(5)
        assert len(node.episodes) == 1
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS

    episodes = [read_episode(p) for p in list_episodes(record)]
    assert len(episodes) == 2
    for index, rec in enumerate(episodes):
        for obs, action in zip(rec.observations, rec.policy_actions, strict=True):
            if not np.isfinite(obs).all():
                continue  # a watchdog tick before every source had arrived
            k = round(float(obs[0] - HOME[0]) * 1e3)
            # Joints and task entries of the same step, on every tick (watchdog ticks included).
            assert np.all(obs[14:] == k), (index, k, obs[14:])
            # The new episode plans only from its own steps, never from the old episode's last observation.
            assert index == 0 or k >= 4 or np.isnan(action).all(), (k, action)
    planned = episodes[1].observations[np.isfinite(episodes[1].policy_actions).all(axis=1)]
    assert round(float(planned[0, 0] - HOME[0]) * 1e3) == 4 and np.all(planned[0, 14:] == 4), planned[0]
