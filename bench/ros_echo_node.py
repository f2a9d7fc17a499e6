"""The peer of the node-latency benchmark: a bare rclpy node that echoes `/joint_states` positions as a command.

It does the least a ROS node can do per sample (one callback, one conversion, one publish) on the same executor
type ($ROBOT_RL_EXECUTOR, ros_nodes/executors.py) and QoS as the policy node, so `policy − echo` is what the
policy, the safety chain and our Python add.
It measures its own arrival → publish time like the policy node does and writes the samples to --out (.npy).

Usage: python bench/ros_echo_node.py --out echo.npy   (with ROS_AUTOMATIC_DISCOVERY_RANGE/ROS_DOMAIN_ID set)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from ros_nodes.executors import make_executor


class EchoNode(Node):
    """`/joint_states` in → `/echo/commands` out, nothing else."""

    def __init__(self) -> None:
        super().__init__("echo")
        self.pub = self.create_publisher(
            Float64MultiArray, "/echo/commands", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        )
        self.create_subscription(JointState, "/joint_states", self._on_js, qos_profile_sensor_data)
        self.latency_ns: list[int] = []

    def _on_js(self, msg: JointState) -> None:
        t0 = time.monotonic_ns()
        self.pub.publish(Float64MultiArray(data=list(msg.position)))
        self.latency_ns.append(time.monotonic_ns() - t0)


def main() -> None:
    from rclpy.signals import SignalHandlerOptions

    from ros_nodes.spin import spin_until_signal

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args, ros_args = ap.parse_known_args()
    # SIGINT/SIGTERM set a flag the spin loop checks (ros_nodes/spin.py): every executor kind stops the same way.
    rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
    node = EchoNode()
    executor = make_executor()  # the same kind as the policy node's ($ROBOT_RL_EXECUTOR)
    executor.add_node(node)
    try:
        spin_until_signal(executor)
    except ExternalShutdownException:
        pass
    finally:
        np.save(args.out, np.asarray(node.latency_ns, dtype=np.int64))
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
