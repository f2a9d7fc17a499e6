"""`sim_robot`: a MuJoCo/PyBullet robot that looks like a ros2_control robot on the ROS graph.

Thin shell around `ros_nodes.core.sim_robot.SimRobot`. Physics steps on a deadline thread at the env's control
rate (absolute deadlines on time.monotonic, so the sim keeps real time and does not drift); commands and the
reset service arrive on the executor thread. One lock serializes every call into the core.

Topics (names relative to the node's namespace; with none they are the absolute names below):
    publishes  /joint_states                  sensor_msgs/JointState       sensor-data QoS (faults applied)
               /observations/<key>            std_msgs/Float64MultiArray   sensor-data QoS (faults applied)
               /robot_rl/is_success           std_msgs/Bool                reliable, depth 10 (ground truth)
               /robot_rl/terminated           std_msgs/Bool                reliable, depth 10 (True on a terminal step)
               /robot_rl/episode_done         std_msgs/Bool                reliable, depth 10 (True on the last step)
               /clock                         rosgraph_msgs/Clock          when publish_clock (sim time)
               /sim/expert_command            std_msgs/Float64MultiArray   reliable, depth 10; only with
                                                                           publish_expert_command (sim-only)
               /diagnostics                   diagnostic_msgs/DiagnosticArray  1 Hz: `sim_robot/commands`
                                                                           (and `sim_robot/expert` when on)
    subscribes /<controller>/commands         std_msgs/Float64MultiArray   reliable, depth 10 (forward_command_ctrl)
    services   ~/reset                        std_srvs/Trigger

Every physics step publishes is_success, terminated, episode_done, then (when on) the expert's command.
`terminated` is the task's terminal state (e.g. the cart-pole fell); an episode_done without it is a truncation
(the time limit). The policy node records the episode's last step with the matching flag.

Command timeout: like a ros2_control controller with a command timeout, the robot holds (zero velocity or effort,
the last commanded position) when no valid command arrived within `command_timeout_s` of sim time (0 = the
default: 3 command periods, at least 0.1 s, where the command period is the slower of the control and the
joint-state publish period, since a policy that ticks on joint states commands at that rate). It resumes on the
next valid command; rejected commands do not count as one. Each timeout is logged (throttled) and counted, and
/diagnostics says WARN while the robot holds on one. See docs/deploy.md for what a real robot's driver must do.

Expert command (issue 15): with `publish_expert_command` on, every physics step also publishes what the task's
scripted expert (privileged simulator state) would command from the state just reached — after an automatic reset,
from the new episode's first state — in the physical units of the command interface, actuated-joint order. It is
a sim-only channel for a scripted operator (`robot-rl-hil-operator`), never a sensor: faults do not touch it, and
nothing is published on a period where the expert fails (the operator sees a stale stream and lets go).

Header stamps are sim time when `publish_clock` is on (consumers run with use_sim_time), else this node's clock
at the moment of measurement (a delayed or frozen sensor keeps its old stamp, as a real one would).

Run: `robot-rl-sim-robot --ros-args -p env_id:=robot_rl/PandaReach-v0 -p backend:=mujoco`. Set
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (and a ROS_DOMAIN_ID) first on a shared network; see ros_nodes/ros_env.py.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, MultiArrayDimension
from std_srvs.srv import Trigger

from robot_rl.safety.diagnostics import OK, WARN
from ros_nodes.core.command_timeout import default_command_timeout_s
from ros_nodes.core.sim_robot import FaultConfig, RobotSnapshot, SimRobot
from ros_nodes.diagnostic_msgs_util import status_msg

COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
"""What ros2_control's forward_command_controller subscribes with."""
EVENT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
"""Reliable writer: matches both best-effort (rclpy TimeSource) and reliable /clock readers."""

DEFAULT_CONTROLLERS = {
    "position": "position_controller",
    "velocity": "velocity_controller",
    "effort": "effort_controller",
}


def time_msg(t_s: float) -> Time:
    """Seconds → builtin_interfaces/Time."""
    sec = math.floor(t_s)
    nanosec = min(round((t_s - sec) * 1e9), 999_999_999)
    return Time(sec=int(sec), nanosec=int(nanosec))


def _optional_time(value: float) -> float | None:
    """ROS parameters have no None: a negative time means "never"."""
    return None if value < 0.0 else float(value)


class SimRobotNode(Node):
    """The simulated robot node (parameters: see `_declare`)."""

    def __init__(self, *, autostart: bool = True, **node_kwargs: Any) -> None:
        # Before anything that can be interrupted: a SIGINT while the engine loads unwinds this constructor, and
        # rclpy's context shutdown then calls destroy_node() on the half-built node, which needs these two.
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__("sim_robot", **node_kwargs)
        p = self._declare()
        faults = FaultConfig(
            drop_rate=float(p["drop_rate"]),
            delay_s=float(p["delay_s"]),
            freeze_after_s=_optional_time(float(p["freeze_after_s"])),
            stop_publishing_after_s=_optional_time(float(p["stop_publishing_after_s"])),
            seed=int(p["seed"]),
        )
        timeout_s = float(p["command_timeout_s"])
        if not (math.isfinite(timeout_s) and timeout_s >= 0.0):
            raise ValueError(f"command_timeout_s must be >= 0 (0 = the default), got {timeout_s}")
        # The timeout is set once the publish period is known (the default depends on it): built without one.
        self.robot = SimRobot(
            str(p["env_id"]),
            backend=str(p["backend"]),
            seed=int(p["seed"]),
            faults=faults,
            episode_steps=int(p["episode_steps"]),
            expert=bool(p["publish_expert_command"]),
        )
        robot = self.robot
        controller: Any = self.declare_parameter("controller", DEFAULT_CONTROLLERS[robot.command_interface]).value
        self.controller = str(controller)
        rate = float(p["publish_rate_hz"]) or robot.control_hz
        if not (math.isfinite(rate) and rate > 0.0):
            robot.close()
            raise ValueError(f"publish_rate_hz must be > 0, got {rate}")
        if rate > robot.control_hz + 1e-9:
            self.get_logger().warning(
                f"publish_rate_hz={rate:g} exceeds the control rate {robot.control_hz:g} Hz; publishing at that"
            )
            rate = robot.control_hz
        self.publish_period_s = 1.0 / rate
        self.command_timeout_s = timeout_s or default_command_timeout_s(max(robot.control_dt_s, self.publish_period_s))
        try:
            robot.set_command_timeout(self.command_timeout_s)
        except ValueError:
            robot.close()
            raise
        self.shuffle_joint_order = bool(p["shuffle_joint_order"])
        self.publish_clock = bool(p["publish_clock"])
        self.reset_on_done = bool(p["reset_on_done"])

        self._lock = threading.Lock()
        self._shuffle_rng = np.random.default_rng(int(p["seed"]) + 1)
        self._next_publish_s = 0.0
        self.published = 0
        """joint_states messages published."""
        self.overruns = 0
        """Control periods whose step+publish did not finish before the next deadline."""
        self.steps = 0

        self._joint_pub = self.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
        self._obs_pubs = {
            k: self.create_publisher(Float64MultiArray, f"observations/{k}", qos_profile_sensor_data)
            for k in robot.observation_keys
        }
        self._success_pub = self.create_publisher(Bool, "robot_rl/is_success", EVENT_QOS)
        self._terminated_pub = self.create_publisher(Bool, "robot_rl/terminated", EVENT_QOS)
        self._done_pub = self.create_publisher(Bool, "robot_rl/episode_done", EVENT_QOS)
        self._clock_pub = self.create_publisher(Clock, "/clock", CLOCK_QOS) if self.publish_clock else None
        self._expert_pub = (
            self.create_publisher(Float64MultiArray, "sim/expert_command", EVENT_QOS) if robot.expert_enabled else None
        )
        self.command_topic = f"{self.controller}/commands"
        self._command_sub = self.create_subscription(
            Float64MultiArray, self.command_topic, self._on_command, COMMAND_QOS
        )
        self._reset_srv = self.create_service(Trigger, "~/reset", self._on_reset)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)

        self.get_logger().info(
            f"{robot.env_id} ({robot.backend}): {len(robot.joint_names)} joints, {robot.command_interface} "
            f"commands on {self.resolve_topic_name(self.command_topic)}, {robot.control_hz:g} Hz, "
            f"command timeout {self.command_timeout_s:g} s" + (f", faults {faults}" if faults.any else "")
        )
        if autostart:
            self.start()

    def _declare(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {
            "env_id": "robot_rl/PandaReach-v0",
            "backend": "mujoco",
            "seed": 0,
            "publish_rate_hz": 0.0,  # 0 = the env's control rate
            "shuffle_joint_order": False,
            "drop_rate": 0.0,
            "delay_s": 0.0,
            "freeze_after_s": -1.0,  # < 0 = never
            "stop_publishing_after_s": -1.0,  # < 0 = never
            "publish_clock": False,
            "episode_steps": 0,  # 0 = the task's default
            "reset_on_done": True,
            "command_timeout_s": 0.0,  # 0 = 3 command periods, at least 0.1 s
            "publish_expert_command": False,  # sim/expert_command: the task expert's suggestion (sim-only)
        }
        out: dict[str, Any] = {}
        for name, value in defaults.items():
            # Float parameters also accept integers (`-p delay_s:=1` would otherwise be a type error).
            descriptor = ParameterDescriptor(dynamic_typing=isinstance(value, float))
            out[name] = self.declare_parameter(name, value, descriptor).value
        for name, value in defaults.items():
            if isinstance(value, float) and not isinstance(out[name], int | float):
                raise ValueError(f"parameter {name} must be a number, got {out[name]!r}")
        return out

    # ------------------------------------------------------------------ lifecycle of the stepping thread
    def start(self) -> None:
        """Start stepping physics on the deadline thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sim_robot_physics", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the stepping thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def destroy_node(self) -> None:
        """Stop stepping, release the physics engine, then destroy the ROS entities."""
        self.stop()
        robot = getattr(self, "robot", None)  # absent when construction was interrupted
        if robot is not None:
            with getattr(self, "_lock", threading.Lock()):
                robot.close()
        super().destroy_node()

    def _run(self) -> None:
        period = self.robot.control_dt_s
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += period
            try:
                self.tick()
            except Exception as exc:  # a bad step must not kill the thread silently
                if self._stop.is_set() or not self.context.ok():
                    return  # shutting down (SIGINT shuts the context before we are stopped)
                self.get_logger().error(f"physics step failed: {exc!r}; stopping the simulation")
                return
            remaining = deadline - time.monotonic()
            if remaining > 0.0:
                self._stop.wait(remaining)
            else:
                self.overruns += 1
                if -remaining > period:  # far behind: resynchronize instead of bursting steps
                    deadline = time.monotonic()

    # ------------------------------------------------------------------ one control period
    def _now_s(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def tick(self) -> None:
        """Step once (unless the episode is over and waiting for ~/reset) and publish what is due."""
        with self._lock:
            robot = self.robot
            if robot.episode_over:
                return  # reset_on_done is off: the robot waits for ~/reset and publishes nothing new
            timeouts = robot.command_stats.timeouts
            snap = robot.step(wall_time_s=self._now_s())
            self.steps += 1
            timed_out = robot.command_stats.timeouts > timeouts
            age = robot.command_age_s
            sensed: RobotSnapshot | None = None
            if snap.time_s + 1e-9 >= self._next_publish_s or snap.episode_over:
                self._next_publish_s = snap.time_s + self.publish_period_s - 1e-9
                sensed = robot.sensor_output()
            if snap.episode_over and self.reset_on_done:
                robot.reset(wall_time_s=self._now_s(), drop_commands_until_step=True)
            expert = robot.expert_command
            expert_errors = robot.expert_errors
        if timed_out:
            self.get_logger().warning(
                f"no valid command on {self.resolve_topic_name(self.command_topic)} for {age or 0.0:.3f} s "
                f"(timeout {self.command_timeout_s:g} s): holding until a fresh command "
                f"({robot.command_stats.timeouts} timeouts so far)",
                throttle_duration_sec=1.0,
            )
        if self._clock_pub is not None:
            self._clock_pub.publish(Clock(clock=time_msg(snap.time_s)))
        if sensed is not None:
            self._publish_sensor(sensed)
        self._success_pub.publish(Bool(data=snap.is_success))
        # Before episode_done: a consumer that acts on episode_done has then (usually) seen how it ended.
        self._terminated_pub.publish(Bool(data=snap.terminated))
        self._done_pub.publish(Bool(data=snap.episode_over))
        if self._expert_pub is not None:
            # After episode_done: an operator that lets go at the episode's end sees the new episode's suggestion
            # only after it.
            if expert is not None:
                self._expert_pub.publish(Float64MultiArray(data=expert.tolist()))
            elif expert_errors:
                self.get_logger().warning(
                    f"no expert command this period ({expert_errors} so far): {robot.last_expert_error}",
                    throttle_duration_sec=1.0,
                )

    def _publish_sensor(self, snap: RobotSnapshot) -> None:
        stamp = time_msg(snap.time_s if self.publish_clock else snap.wall_time_s)
        order = np.arange(len(snap.joint_names))
        if self.shuffle_joint_order:
            order = self._shuffle_rng.permutation(order)
        # The task's observations go out before the joint state: a policy node triggered by /joint_states then
        # usually has this step's values of them too (separate topics are not ordered, so it is not guaranteed).
        for key, pub in self._obs_pubs.items():
            values = np.asarray(snap.observations[key], dtype=np.float64).reshape(-1)
            arr = Float64MultiArray()
            arr.layout.dim = [MultiArrayDimension(label=key, size=int(values.size), stride=int(values.size))]
            arr.data = values.tolist()
            pub.publish(arr)
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = [snap.joint_names[i] for i in order]
        msg.position = [float(snap.positions[i]) for i in order]
        msg.velocity = [float(snap.velocities[i]) for i in order]
        msg.effort = [float(snap.efforts[i]) for i in order] if snap.efforts.size else []
        self._joint_pub.publish(msg)
        self.published += 1

    # ------------------------------------------------------------------ executor-thread callbacks
    def _on_command(self, msg: Float64MultiArray) -> None:
        values: Sequence[float] | np.ndarray
        try:
            values = np.asarray(msg.data, dtype=np.float64)
        except (TypeError, ValueError):
            values = []
        with self._lock:
            was_holding = self.robot.holding_on_timeout
            age = self.robot.command_age_s
            ok = self.robot.apply_command(values, stamp_s=self._now_s())
            reason = self.robot.command_stats.last_reject_reason
        if not ok:
            self.get_logger().warning(
                f"rejected command (the previous one stays in force, and this one does not refresh the "
                f"{self.command_timeout_s:g} s command timeout): {reason}",
                throttle_duration_sec=1.0,
            )
        elif was_holding:
            self.get_logger().info(
                f"fresh command after {age or 0.0:.3f} s without one: resuming", throttle_duration_sec=1.0
            )

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            snap = self.robot.reset(wall_time_s=self._now_s(), drop_commands_until_step=True)
        response.success = True
        response.message = f"episode {snap.episode} started at sim time {snap.time_s:.3f} s"
        return response

    def _publish_diagnostics(self) -> None:
        with self._lock:
            entry = self.robot.command_diagnostics()
            expert_errors, expert_error = self.robot.expert_errors, self.robot.last_expert_error
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status.append(
            status_msg(entry.level, f"{self.get_name()}/commands", entry.message, self.robot.env_id, entry.values)
        )
        if self._expert_pub is not None:
            level = WARN if expert_errors else OK
            message = f"{expert_errors} period(s) without a suggestion" if expert_errors else "publishing"
            values = {"errors": expert_errors, "last_error": expert_error or ""}
            arr.status.append(status_msg(level, f"{self.get_name()}/expert", message, self.robot.env_id, values))
        self._diag_pub.publish(arr)

    @property
    def rejected_commands(self) -> int:
        """Malformed commands received so far."""
        return self.robot.command_stats.rejected


def main(args: list[str] | None = None) -> int:
    """Console entry `robot-rl-sim-robot`: run the node until SIGINT/SIGTERM (stepping thread joined first)."""
    from ros_nodes.spin import run_node

    try:
        return run_node(SimRobotNode, args, lambda node: node.stop())
    except KeyboardInterrupt:
        # SIGINT before the spin loop took over the signal (the engine was still loading): nothing ran, nothing
        # to hold; run_node's cleanup already shut the context down. A requested stop is a clean exit.
        return 0


if __name__ == "__main__":
    sys.exit(main())
