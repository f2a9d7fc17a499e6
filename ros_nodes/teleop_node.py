"""Teleop node: `sensor_msgs/Joy` with a dead-man button → `/teleop/engaged` + `/teleop/commands` (thin shell).

Programmatic operators skip this node and publish the same two topics themselves (see `ScriptedOperator`).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool, Float64MultiArray

from ros_nodes.core.teleop import JoyMapping, JoyTeleop

COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class TeleopNode(Node):
    """Maps a joystick to joint commands while the dead-man button is held."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("teleop", **kwargs)
        joints: list[str] = list(self.declare_parameter("joints", [""]).value or [])
        joints = [j for j in joints if j]
        axes: list[int] = list(self.declare_parameter("axes", [-1]).value or [])
        scales: list[float] = list(self.declare_parameter("scale_rad_s", [0.0]).value or [])
        if len(axes) != len(joints) or len(scales) != len(joints):
            raise ValueError(f"teleop: joints {joints}, axes {axes} and scale_rad_s {scales} need equal lengths")
        self.joints = joints
        self.teleop = JoyTeleop(
            JoyMapping(
                deadman_button=int(self.declare_parameter("deadman_button", 4).value),
                axes=tuple(int(a) for a in axes),
                scale_rad_s=tuple(float(s) for s in scales),
                command_interface=str(self.declare_parameter("command_interface", "velocity").value),
            )
        )
        self._pos: np.ndarray | None = None
        self._engaged: bool | None = None
        self.engaged_pub = self.create_publisher(Bool, "/teleop/engaged", LATCHED_QOS)
        self.command_pub = self.create_publisher(Float64MultiArray, "/teleop/commands", COMMAND_QOS)
        self.create_subscription(Joy, "/joy", self._on_joy, qos_profile_sensor_data)
        self.create_subscription(JointState, "/joint_states", self._on_joint_state, qos_profile_sensor_data)
        self._set_engaged(False)

    def _set_engaged(self, engaged: bool) -> None:
        if engaged != self._engaged:
            self._engaged = engaged
            self.engaged_pub.publish(Bool(data=engaged))

    def _on_joint_state(self, msg: JointState) -> None:
        where = {n: i for i, n in enumerate(msg.name)}
        if all(j in where for j in self.joints) and len(msg.position) == len(msg.name):
            pos = np.array([msg.position[where[j]] for j in self.joints])
            if np.isfinite(pos).all():
                self._pos = pos

    def _on_joy(self, msg: Joy) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        engaged, command = self.teleop.update(list(msg.buttons), list(msg.axes), now, self._pos)
        self._set_engaged(engaged)
        if engaged and command is not None:
            self.command_pub.publish(Float64MultiArray(data=command.tolist()))


def main(args: list[str] | None = None) -> int:
    """Entry point `robot-rl-teleop`: on stop, tells the policy node the operator let go."""
    from ros_nodes.spin import run_node

    return run_node(TeleopNode, args, lambda node: node._set_engaged(False))


if __name__ == "__main__":
    sys.exit(main())
