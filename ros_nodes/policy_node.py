"""The policy node: a lifecycle node that runs an ONNX bundle behind the safety chain (a thin shell).

ROS I/O runs on a SingleThreadedExecutor; the control tick runs on its own thread sleeping to absolute deadlines
(measured: 2–6× less jitter than an rclpy timer, and MultiThreadedExecutor timers are unreliable with these
wheels). Incoming messages update the ROS-free `ControlStep` under a lock; the tick reads the latest of each.

Lifecycle: unconfigured → configure (load + verify the bundle, build the chain; any mismatch fails with the
reason) → inactive → activate (control starts; also the only way to resume after an e-stop release) → deactivate
(publishes a hold, stops control) → cleanup. A restarted process always comes up unconfigured, never active.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ros_nodes.core.control_step import HumanInput, TickResult
from ros_nodes.core.deployment import Deployment, build_deployment
from ros_nodes.core.loop_stats import LoopStats

COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
"""ros2_control's forward command controllers subscribe RELIABLE: a best-effort publisher would not match."""
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""Late joiners (recorders, dashboards) get the current intervention state."""

PARAM_DEFAULTS: dict[str, Any] = {
    "bundle_dir": "",
    "expected_sha256": "",
    "controller": "",
    "control_hz": 0.0,
    "trigger": "timer",
    "replan_every": 0,
    "reward_hooks": ["rlif", "success"],
    "human_timeout_s": 0.25,
    "publish_trajectory": False,
    "record_dir": "",
    "episode_steps": 0,
    "operator": "",
    "robot": "",
    "urdf": "",
    "ee_link": "",
    "stats_path": "",
}


def _stamp_s(msg: Any) -> float:
    return float(msg.header.stamp.sec) + 1e-9 * float(msg.header.stamp.nanosec)


class PolicyNode(LifecycleNode):
    """ONNX policy + safety chain + human takeover + e-stop + recording, as a managed node."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            "policy_node",
            allow_undeclared_parameters=True,
            automatically_declare_parameters_from_overrides=True,
            **kwargs,
        )
        for name, default in PARAM_DEFAULTS.items():
            if not self.has_parameter(name):
                self.declare_parameter(name, default)
        self._lock = threading.Lock()
        self._dep: Deployment | None = None
        self._active = False
        self._human = HumanInput()
        self._subs: list[Any] = []
        self._pubs: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._recorder: Any = None
        self._episode_open = False
        self._stats: LoopStats | None = None
        self._latest_js_arrival_ns = 0
        self._intervention_steps = 0
        self._episode_intervention_steps = 0
        self._done_pending = False
        self.received: dict[str, int] = {"joint_states": 0, "observations": 0, "teleop_commands": 0}
        """Messages taken per input kind (malformed ones included): the denominator of the rejection counters."""
        self.episodes: list[bool] = []
        """Task success of each episode the robot ended (`/robot_rl/episode_done`), in order."""
        self._last_error = ""
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        self.create_service(SetBool, "~/estop", self._on_estop)
        self.create_service(Trigger, "~/end_episode", self._on_end_episode)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ----- parameters -----
    def _params(self) -> dict[str, Any]:
        return {name: p.value for name, p in self._parameters.items()}

    def _on_set_parameters(self, params: list[Parameter[Any]]) -> SetParametersResult:
        # Limits are read at configure; changing them under a running loop would bypass review (R2).
        if self._active and any(p.name.startswith("safety.") or p.name in PARAM_DEFAULTS for p in params):
            return SetParametersResult(successful=False, reason="parameters are read-only while the node is active")
        return SetParametersResult(successful=True)

    # ----- lifecycle -----
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            dep = build_deployment(self._params())
        except (ValueError, RuntimeError, OSError) as exc:  # BundleError is a ValueError
            self._last_error = f"configure refused: {exc}"
            self.get_logger().error(self._last_error)
            return TransitionCallbackReturn.FAILURE
        self._dep = dep
        self._stats = LoopStats(1.0 / dep.control_hz)
        self._last_error = ""
        self._create_io(dep)
        if dep.config.record_dir:
            from robot_rl.data.episode_record import RecorderConfig  # only when recording
            from robot_rl.data.mcap_writer import EpisodeRecorder

            self._recorder = EpisodeRecorder(RecorderConfig(directory=Path(dep.config.record_dir)))
        self.get_logger().info(
            f"configured: bundle {dep.config.bundle_dir} ({dep.policy.manifest.onnx_sha256[:12]}), "
            f"{dep.step.mapping.command_interface} commands to {dep.command_topic} at {dep.control_hz:g} Hz"
        )
        return TransitionCallbackReturn.SUCCESS

    def _create_io(self, dep: Deployment) -> None:
        sub = self.create_subscription
        self._subs = [
            sub(JointState, "/joint_states", self._on_joint_state, qos_profile_sensor_data),
            sub(Float64MultiArray, "/teleop/commands", self._on_teleop_command, COMMAND_QOS),
            sub(Bool, "/teleop/engaged", self._on_teleop_engaged, LATCHED_QOS),
            sub(Bool, "/robot_rl/is_success", self._on_success, 10),
            sub(Bool, "/robot_rl/episode_done", self._on_episode_done, 10),
        ]
        for key in dep.step.assembler.layout.topic_keys:
            self._subs.append(
                sub(
                    Float64MultiArray,
                    f"/observations/{key}",
                    lambda m, k=key: self._on_observation(k, m),
                    qos_profile_sensor_data,
                )
            )
        self._pubs = {
            "command": self.create_publisher(Float64MultiArray, dep.command_topic, COMMAND_QOS),
            "intervention": self.create_publisher(Bool, "/robot_rl/intervention", LATCHED_QOS),
        }
        if dep.config.publish_trajectory:
            self._pubs["trajectory"] = self.create_publisher(
                JointTrajectory, f"/{dep.controller}/joint_trajectory", COMMAND_QOS
            )
        self._pubs["intervention"].publish(Bool(data=False))

    def _destroy_io(self) -> None:
        for s in self._subs:
            self.destroy_subscription(s)
        for p in self._pubs.values():
            self.destroy_publisher(p)
        self._subs, self._pubs = [], {}

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        dep = self._dep
        if dep is None:
            return TransitionCallbackReturn.FAILURE
        with self._lock:
            if dep.step.chain.estop_engaged:
                self._last_error = "activate refused: software e-stop is engaged (release it first)"
                self.get_logger().error(self._last_error)
                return TransitionCallbackReturn.FAILURE
            dep.step.chain.enable()
            dep.step.reset()
            self._done_pending = False
            self._start_episode()
        self._active = True
        self._stop.clear()
        if dep.config.trigger == "timer":
            self._thread = threading.Thread(target=self._control_loop, name="policy_control", daemon=True)
            self._thread.start()
        self.get_logger().info("active: control running")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._halt(truncated=True)
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._halt(truncated=True)
        self._close()
        return TransitionCallbackReturn.SUCCESS

    def _halt(self, *, truncated: bool) -> None:
        """Stop the loop, publish one hold and close the episode."""
        self._active = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        dep = self._dep
        if dep is None:
            return
        with self._lock:
            hold = dep.step.chain.hold_action(dep.step.assembler.joint_positions(dep.step.mapping.joints))
            self._publish_command(dep, hold)
            self._end_episode(terminated=False, truncated=truncated)
        self._write_stats()

    def _close(self) -> None:
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
        self._destroy_io()
        self._dep = None

    # ----- episodes / recording -----
    def _start_episode(self, *, wait: bool = True) -> None:
        if self._recorder is not None and self._dep is not None and not self._episode_open:
            self._recorder.start_episode(self._dep.episode_metadata(), wait=wait)
            self._episode_open = True
            self._episode_intervention_steps = 0

    def _end_episode(self, *, terminated: bool, truncated: bool, wait: bool = True) -> None:
        """Close the recorded episode; inside the control loop with wait=False (no fsync in the tick)."""
        if self._recorder is not None and self._episode_open:
            extra = {"intervention_steps": str(self._episode_intervention_steps)}
            if self._dep is not None and self._dep.step.is_success is not None:
                extra["is_success"] = str(bool(self._dep.step.is_success)).lower()
            self._recorder.end_episode(terminated=terminated, truncated=truncated, extra=extra, wait=wait)
            self._episode_open = False

    def _record(self, res: TickResult, terminated: bool, truncated: bool) -> None:
        if self._recorder is None or not self._episode_open:
            return
        from robot_rl.data.episode_record import StepRecord

        obs = (
            res.observation
            if res.observation is not None
            else np.full(self._dep.policy.obs_dim if self._dep else 0, np.nan, np.float32)
        )
        self._recorder.record_step(
            StepRecord(
                step=res.step,
                stamp_ns=int(res.now_s * 1e9),
                observation=obs,
                policy_action=res.policy_action,
                executed_action=res.command,
                reward_terms=res.rewards,
                intervention=res.intervention,
                safety_reasons=res.safety.reasons,
                terminated=terminated,
                truncated=truncated,
            )
        )

    # ----- subscriptions (executor thread) -----
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        dep = self._dep
        if dep is None:
            return
        arrival_ns = time.monotonic_ns()
        self.received["joint_states"] += 1
        with self._lock:
            err = dep.step.assembler.update_joint_state(
                msg.name, msg.position, msg.velocity, arrival_s=self._now_s(), header_stamp_s=_stamp_s(msg)
            )
            if err is None:
                self._latest_js_arrival_ns = arrival_ns
        if err is None and self._active and dep.config.trigger == "joint_states":
            self._tick(dep, arrival_ns)

    def _on_observation(self, key: str, msg: Float64MultiArray) -> None:
        dep = self._dep
        if dep is not None:
            self.received["observations"] += 1
            with self._lock:
                dep.step.assembler.update_observation(key, msg.data, arrival_s=self._now_s())

    def _on_teleop_command(self, msg: Float64MultiArray) -> None:
        dep = self._dep
        if dep is None:
            return
        self.received["teleop_commands"] += 1
        values = np.asarray(msg.data, dtype=np.float64)
        # Malformed operator commands are passed on as they are: the chain holds on them and counts why.
        with self._lock:
            self._human = HumanInput(self._human.engaged, values, self._now_s())

    def _on_teleop_engaged(self, msg: Bool) -> None:
        with self._lock:
            self._human = HumanInput(bool(msg.data), self._human.command, self._human.stamp_s)

    def _on_success(self, msg: Bool) -> None:
        if self._dep is not None:
            with self._lock:
                self._dep.step.is_success = bool(msg.data)

    def _on_episode_done(self, msg: Bool) -> None:
        dep = self._dep
        if dep is None or not msg.data or not self._active:
            return
        # Closed at the next tick, not here: `/robot_rl/is_success` of the same last step travels on its own topic
        # and may be handled after this message; by the next tick it has arrived.
        self._done_pending = True

    def _roll_over_episode(self, dep: Deployment) -> None:
        """The robot ended the episode (time limit or task end): close it, start the next. Caller holds the lock."""
        self._done_pending = False
        # Physics termination is not visible from here: the robot's end of episode is recorded as truncation.
        self._end_episode(terminated=False, truncated=True, wait=False)
        self.episodes.append(bool(dep.step.is_success))
        dep.step.reset()
        dep.step.is_success = None
        self._start_episode(wait=False)

    # ----- services -----
    def _on_estop(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        dep = self._dep
        if dep is None:
            res.success, res.message = False, "not configured"
            return res
        with self._lock:
            if req.data:
                dep.step.chain.engage_estop("service ~/estop")
                hold = dep.step.chain.hold_action(dep.step.assembler.joint_positions(dep.step.mapping.joints))
                self._publish_command(dep, hold)  # hold now, not at the next tick
                res.message = "e-stop engaged (latched)"
            else:
                dep.step.chain.release_estop()
                res.message = "e-stop released; motion resumes only after deactivate + activate"
        res.success = True
        self.get_logger().warning(res.message)
        return res

    def _on_end_episode(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self._end_episode(terminated=False, truncated=True)
            if self._active:
                self._start_episode()
        res.success, res.message = True, "episode closed"
        return res

    # ----- control -----
    def _publish_command(self, dep: Deployment, command: np.ndarray) -> None:
        if not np.isfinite(command).all():  # defence in depth: the chain never returns NaN
            return
        pub = self._pubs.get("command")
        if pub is None:
            return
        pub.publish(Float64MultiArray(data=command.tolist()))
        traj = self._pubs.get("trajectory")
        if traj is not None and dep.step.mapping.command_interface == "position":
            msg = JointTrajectory(joint_names=list(dep.step.mapping.joints))
            point = JointTrajectoryPoint(positions=command.tolist())
            point.time_from_start.nanosec = int(1e9 / dep.control_hz)
            msg.points = [point]
            traj.publish(msg)

    def _tick(self, dep: Deployment, start_ns: int) -> None:
        with self._lock:
            if self._done_pending:
                self._roll_over_episode(dep)
            res = dep.step.tick(self._now_s(), self._human)
            self._publish_command(dep, res.command)
            if res.intervention:
                self._intervention_steps += 1
                self._episode_intervention_steps += 1
            if res.intervention_onset or res.intervention_offset:
                self._pubs["intervention"].publish(Bool(data=res.intervention))
            truncated = dep.config.episode_steps > 0 and res.step + 1 >= dep.config.episode_steps
            self._record(res, False, truncated)
            if truncated:
                self._end_episode(terminated=False, truncated=True, wait=False)
                dep.step.reset()
                self._start_episode(wait=False)
        if self._stats is not None:
            self._stats.add(time.monotonic_ns() - start_ns)

    def _control_loop(self) -> None:
        dep = self._dep
        if dep is None:
            return
        period_ns = int(1e9 / dep.control_hz)
        deadline = time.monotonic_ns()
        while not self._stop.is_set():
            deadline += period_ns
            delay = deadline - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            elif delay < -period_ns:  # overran by more than a period: skip ticks instead of bursting
                deadline = time.monotonic_ns()
            try:
                self._tick(dep, deadline)
            except Exception as exc:  # never let the loop die silently: hold and report
                self._last_error = f"control tick failed: {type(exc).__name__}: {exc}"
                self.get_logger().error(self._last_error)
                with self._lock:
                    dep.step.chain.engage_estop(self._last_error)

    # ----- reporting -----
    def loop_summary(self) -> dict[str, Any]:
        """Timing, safety counters and intervention steps of this run (also written to stats_path)."""
        dep = self._dep
        out: dict[str, Any] = {
            "loop": self._stats.summary().to_json() if self._stats else {},
            "intervention_steps": self._intervention_steps,
            "last_error": self._last_error,
            "episodes": len(self.episodes),
            "successes": sum(self.episodes),
        }
        if dep is not None:
            out["safety"] = dict(dep.step.chain.counters)
            out["policy_errors"] = dep.step.policy_errors
            out["observation_rejections"] = dict(dep.step.assembler.rejected)
            out["received"] = dict(self.received)
            out["reward_hook_failures"] = dict(dep.step.hooks.failures)
            out["control_hz"] = dep.control_hz
            if self._recorder is not None:
                out["recorder"] = self._recorder.stats()
        return out

    def _write_stats(self) -> None:
        path = str(self.get_parameter("stats_path").value or "")
        if path:
            Path(path).write_text(json.dumps(self.loop_summary(), indent=2))

    def _publish_diagnostics(self) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        dep = self._dep
        if dep is not None:
            with self._lock:
                entries = dep.step.chain.diagnostics()
            for e in entries:
                arr.status.append(
                    DiagnosticStatus(
                        level=bytes([e.level]),
                        name=f"policy_node/{e.name}",
                        message=e.message,
                        hardware_id=dep.robot,
                        values=[KeyValue(key=k, value=v) for k, v in e.values.items()],
                    )
                )
        summary = self.loop_summary()
        loop = summary.get("loop", {})
        level = 2 if self._last_error else 0
        arr.status.append(
            DiagnosticStatus(
                level=bytes([level]),
                name="policy_node/loop",
                message=self._last_error or ("active" if self._active else "inactive"),
                values=[
                    KeyValue(key=str(k), value=str(v))
                    for k, v in {**loop, "intervention_steps": self._intervention_steps}.items()
                ],
            )
        )
        self._diag_pub.publish(arr)


def _stop(node: PolicyNode) -> None:
    node._halt(truncated=True)  # publishes the hold and closes the episode while the context is valid
    node._close()


def main(args: list[str] | None = None) -> int:
    """Entry point `robot-rl-policy-node`: spin until SIGINT/SIGTERM, then hold and shut down."""
    from ros_nodes.spin import run_node

    return run_node(PolicyNode, args, _stop)


if __name__ == "__main__":
    sys.exit(main())
