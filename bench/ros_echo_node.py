"""The peer of the node-latency benchmark: a bare rclpy node that echoes `/joint_states` positions as a command.

It does the least a ROS node can do per sample (one callback, one conversion, one publish) on the same executor
type and QoS as the policy node, so `policy − echo` is what the policy, the safety chain and our Python add.
It measures its own arrival → publish time like the policy node does and writes the samples to --out (.npy).

Usage: python bench/ros_echo_node.py --out echo.npy   (with ROS_AUTOMATIC_DISCOVERY_RANGE/ROS_DOMAIN_ID set)
"""

from __future__ import annotations

import argparse
import signal
import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray


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
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args, ros_args = ap.parse_known_args()
    rclpy.init(args=ros_args)
    node = EchoNode()
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        np.save(args.out, np.asarray(node.latency_ns, dtype=np.int64))
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
