"""`hil_operator`: a scripted operator that behaves like a person (issue 15); a thin shell around `OperatorLogic`.

It watches the robot against the task's expert and takes over when the robot drifts away from what the expert
would do, drives with the expert until the robot has recovered, and hands back. It speaks the teleop topics
(`/teleop/commands` first, then `/teleop/engaged`), so the policy node cannot tell it from a person holding the
Joy dead-man — which stays the way a real person takes over (run one or the other on a graph, not both).

Topics:
    subscribes /sim/expert_command          std_msgs/Float64MultiArray  reliable, depth 10 (sim robot node with
                                                                        publish_expert_command:=true); one decision
                                                                        per message
               /velocity_controller/commands std_msgs/Float64MultiArray reliable, depth 10: what the robot executed
                                                                        (parameter robot_command_topic)
               policy_topic (off)            std_msgs/Float64MultiArray the policy's own proposal, if something
                                                                        publishes it (release on agreement)
               /robot_rl/is_success          std_msgs/Bool              the recovery signal over ROS
               /robot_rl/episode_done        std_msgs/Bool              ends a takeover; the budget starts afresh
    publishes  /teleop/commands              std_msgs/Float64MultiArray reliable, depth 10 (expert's command while
                                                                        engaged, one per expert message)
               /teleop/engaged               std_msgs/Bool              reliable, transient local (on changes)
               /operator/interventions       std_msgs/String            reliable, depth 50: JSON per start and end
                                                                        ({"event": "start"|"end", record fields})
               /diagnostics                  diagnostic_msgs/DiagnosticArray  1 Hz: `hil_operator/operator`

Stream timeout: a timer (`check_rate_hz`) checks the expert stream; older than `stream_timeout_s` it is stale, an
engaged operator releases at once and the spell is counted — it never drives on a stale expert. An executed or
policy command older than `stream_timeout_s` is not compared (no evidence, no takeover).

The drift is normalized by the command range: `command_low`/`command_high`, or the action bounds of the bundle in
`bundle_dir` (the policy node's bundle). Run:
`robot-rl-hil-operator --ros-args -p bundle_dir:=models/reach -p robot_command_topic:=/velocity_controller/commands`.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Float64MultiArray, String

from robot_rl.safety.diagnostics import OK, WARN
from ros_nodes.core.operator_logic import InterventionRecord, OperatorConfig, OperatorDecision, OperatorLogic
from ros_nodes.diagnostic_msgs_util import status_msg

COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
RECORD_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

NODE_DEFAULTS: dict[str, Any] = {
    "expert_topic": "/sim/expert_command",
    "robot_command_topic": "/velocity_controller/commands",
    "policy_topic": "",  # "" = the policy's own proposal is not observable
    "success_topic": "/robot_rl/is_success",
    "episode_done_topic": "/robot_rl/episode_done",
    "bundle_dir": "",  # the command range from this bundle's manifest (when command_low/high are not given)
    "command_low": [0.0],  # [A] physical; [0.0] with command_high [0.0] = not given
    "command_high": [0.0],
    "check_rate_hz": 20.0,
}
"""The node's own parameters beyond `OperatorConfig`'s fields."""


def command_range(bundle_dir: str, low: list[float], high: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The command range: explicit bounds, else the bundle's action spec.

    Raises:
        ValueError: neither is given, or the bundle cannot be read.
    """
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if not (lo.size == hi.size == 1 and lo[0] == hi[0] == 0.0):
        return lo, hi
    if not bundle_dir:
        raise ValueError("hil_operator needs the command range: set command_low/command_high or bundle_dir")
    from robot_rl.export.manifest import read_manifest

    try:
        action = read_manifest(bundle_dir).policy_spec.action
    except Exception as exc:  # BundleError, OSError: one line naming the bundle
        raise ValueError(f"hil_operator: cannot read the command range from {bundle_dir!r}: {exc}") from None
    return np.asarray(action.low, np.float64), np.asarray(action.high, np.float64)


class HilOperator(Node):
    """The operator node (parameters: `OperatorConfig`'s fields and `NODE_DEFAULTS`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("hil_operator", **kwargs)
        p = self._declare()
        config = OperatorConfig.from_params({k: p[k] for k in OperatorConfig.parameter_defaults()})
        low, high = command_range(str(p["bundle_dir"]), list(p["command_low"]), list(p["command_high"]))
        self.logic = OperatorLogic(config, low, high)
        rate = float(p["check_rate_hz"])
        if not (math.isfinite(rate) and rate > 0.0):
            raise ValueError(f"check_rate_hz must be > 0, got {rate}")
        self._lock = threading.Lock()
        self._robot: tuple[np.ndarray, float] | None = None
        self._policy: tuple[np.ndarray, float] | None = None
        self._success: bool | None = None
        self.engaged = False
        self.windows: list[tuple[float, float]] = []
        """Node-clock times (s) at which it engaged and released: the ground truth of its takeovers."""

        self.command_pub = self.create_publisher(Float64MultiArray, "/teleop/commands", COMMAND_QOS)
        self.engaged_pub = self.create_publisher(Bool, "/teleop/engaged", LATCHED_QOS)
        self.record_pub = self.create_publisher(String, "/operator/interventions", RECORD_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.engaged_pub.publish(Bool(data=False))
        sub = self.create_subscription
        self.expert_topic = str(p["expert_topic"])
        sub(Float64MultiArray, self.expert_topic, self._on_expert, COMMAND_QOS)
        sub(Float64MultiArray, str(p["robot_command_topic"]), self._on_robot_command, COMMAND_QOS)
        if p["policy_topic"]:
            sub(Float64MultiArray, str(p["policy_topic"]), self._on_policy, COMMAND_QOS)
        sub(Bool, str(p["success_topic"]), self._on_success, 10)
        sub(Bool, str(p["episode_done_topic"]), self._on_episode_done, 10)
        self.create_timer(1.0 / rate, self._on_check)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"watching {self.expert_topic} against {p['robot_command_topic']}: engage at drift > "
            f"{config.engage_threshold:g} for {config.engage_ticks} ticks, budget "
            f"{config.max_interventions_per_episode or 'unlimited'} per episode"
        )

    def _declare(self) -> dict[str, Any]:
        defaults = {**OperatorConfig.parameter_defaults(), **NODE_DEFAULTS}
        out: dict[str, Any] = {}
        for name, value in defaults.items():
            descriptor = ParameterDescriptor(dynamic_typing=isinstance(value, float | list))
            out[name] = self.declare_parameter(name, value, descriptor).value
        return out

    def _now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _fresh(self, latest: tuple[np.ndarray, float] | None, now: float) -> np.ndarray | None:
        if latest is None or now - latest[1] > self.logic.config.stream_timeout_s:
            return None
        return latest[0]

    # ------------------------------------------------------------------ callbacks
    def _on_expert(self, msg: Float64MultiArray) -> None:
        now = self._now()
        with self._lock:
            expert = _floats(msg.data)
            decision = self.logic.step(
                now,
                expert,
                robot=self._fresh(self._robot, now),
                policy=self._fresh(self._policy, now),
                success=self._success,
            )
            self._apply(decision, now, sample=True)

    def _on_robot_command(self, msg: Float64MultiArray) -> None:
        with self._lock:
            self._robot = (_floats(msg.data), self._now())

    def _on_policy(self, msg: Float64MultiArray) -> None:
        with self._lock:
            self._policy = (_floats(msg.data), self._now())

    def _on_success(self, msg: Bool) -> None:
        with self._lock:
            self._success = bool(msg.data)

    def _on_episode_done(self, msg: Bool) -> None:
        if not msg.data:
            return
        now = self._now()
        with self._lock:
            ended = self.logic.new_episode(now)
            self._success = None
            self._apply(OperatorDecision(False, None, ended=ended), now)

    def _on_check(self) -> None:
        now = self._now()
        with self._lock:
            was_stale = self.logic.expert_stale
            decision = self.logic.check(now)
            self._apply(decision, now)
            stale = self.logic.expert_stale
        if stale and not was_stale:
            self.get_logger().warning(f"expert stream {self.expert_topic} went stale: not driving on it")

    # ------------------------------------------------------------------ output
    def _apply(self, decision: OperatorDecision, now: float, *, sample: bool = False) -> None:
        """Publish what the decision says; commands only for a fresh expert `sample`. Caller holds the lock."""
        if decision.ended is not None:
            self._publish_record("end", decision.ended)
        if sample and decision.engaged and decision.command is not None:
            # Commands first, then engage: the policy node never sees "engaged" without a command to follow.
            self.command_pub.publish(Float64MultiArray(data=decision.command.tolist()))
        if decision.engaged != self.engaged:
            self.engaged = decision.engaged
            self.engaged_pub.publish(Bool(data=decision.engaged))
            if decision.engaged:
                self.windows.append((now, float("nan")))
            elif self.windows:
                self.windows[-1] = (self.windows[-1][0], now)
        if decision.started is not None:
            self._publish_record("start", decision.started)
            self.get_logger().info(f"taking over: {decision.started.reason}")
        if decision.ended is not None:
            rec = decision.ended
            self.get_logger().info(f"handing back after {rec.duration_s or 0.0:.2f} s: {rec.end_reason}")

    def _publish_record(self, event: str, record: InterventionRecord) -> None:
        self.record_pub.publish(String(data=json.dumps({"event": event, **record.to_json()})))

    def _publish_diagnostics(self) -> None:
        with self._lock:
            logic = self.logic
            stats = logic.stats
            stale = logic.expert_stale
            values: dict[str, object] = {
                "engaged": str(logic.engaged).lower(),
                "interventions": len(logic.records) + (1 if logic.engaged else 0),
                "interventions_this_episode": logic.interventions_this_episode,
                "expert_samples": stats.samples,
                "expert_stale": str(stale).lower(),
                "stale_spells": stats.stale,
                "refused_budget": stats.refused_budget,
                "refused_cooldown": stats.refused_cooldown,
                "last_drift": "none" if stats.last_drift is None else f"{stats.last_drift:.3f}",
                **{f"releases/{k}": v for k, v in sorted(stats.releases.items())},
                **{f"rejected/{k}": v for k, v in sorted(stats.rejected.items())},
                "last_reject_reason": stats.last_reject_reason,
            }
            current = logic.current
        if stale:
            level, message = WARN, f"expert stream {self.expert_topic} stale or absent: not intervening"
        elif current is not None:
            level, message = OK, f"engaged: {current.reason}"
        else:
            level, message = OK, "watching"
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status.append(status_msg(level, f"{self.get_name()}/operator", message, "", values))
        self._diag_pub.publish(arr)


def _floats(data: Any) -> np.ndarray:
    """A message's values as floats; malformed data becomes an empty vector (the logic rejects and counts it)."""
    try:
        return np.asarray(data, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return np.zeros(0)


def main(args: list[str] | None = None) -> int:
    """Entry point `robot-rl-hil-operator`."""
    from ros_nodes.spin import run_node

    return run_node(HilOperator, args)


if __name__ == "__main__":
    sys.exit(main())
