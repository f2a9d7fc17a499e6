"""A scripted human: takes over for a time window with fixed commands (tests and the demo's takeover).

It speaks the same topics as the teleop node (`/teleop/engaged`, `/teleop/commands`), so the policy node cannot
tell it from a person with a joystick. Ground truth of when it was engaged is kept for label checks.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Float64MultiArray

COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class ScriptedOperator(Node):
    """Engages at `start_s` after its first tick for `duration_s`, publishing `command` at `rate_hz`."""

    def __init__(
        self,
        command: Sequence[float] | None = None,
        start_s: float | None = None,
        duration_s: float | None = None,
        rate_hz: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__("scripted_operator", **kwargs)
        self.command = [
            float(x) for x in (command if command is not None else self.declare_parameter("command", [0.0]).value)
        ]
        self.start_s = float(start_s if start_s is not None else self.declare_parameter("start_s", 2.0).value)
        self.duration_s = float(
            duration_s if duration_s is not None else self.declare_parameter("duration_s", 1.0).value
        )
        rate = float(rate_hz if rate_hz is not None else self.declare_parameter("rate_hz", 50.0).value)
        self.engaged_pub = self.create_publisher(Bool, "/teleop/engaged", LATCHED_QOS)
        self.command_pub = self.create_publisher(Float64MultiArray, "/teleop/commands", COMMAND_QOS)
        self.t0: float | None = None
        self.engaged = False
        self.windows: list[tuple[float, float]] = []
        """Node-clock times (s) at which it engaged and released: the ground truth of the takeover."""
        self.engaged_pub.publish(Bool(data=False))
        self.create_timer(1.0 / rate, self._tick)

    @property
    def done(self) -> bool:
        """The scripted takeover has happened and ended."""
        return bool(self.windows) and not self.engaged

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _tick(self) -> None:
        now = self._now()
        if self.t0 is None:
            self.t0 = now
        t = now - self.t0
        want = self.start_s <= t < self.start_s + self.duration_s
        if want:
            # Commands first, then engage: the policy node never sees "engaged" without a command to follow.
            self.command_pub.publish(Float64MultiArray(data=self.command))
        if want != self.engaged:
            self.engaged = want
            self.engaged_pub.publish(Bool(data=want))
            if want:
                self.windows.append((now, float("nan")))
            else:
                self.windows[-1] = (self.windows[-1][0], now)


def main(args: list[str] | None = None) -> int:
    """Entry point `robot-rl-scripted-operator`."""
    from ros_nodes.spin import run_node

    return run_node(ScriptedOperator, args)


if __name__ == "__main__":
    sys.exit(main())
