"""The policy node: a lifecycle node that runs an ONNX bundle behind the safety chain (a thin shell).

ROS I/O runs on a SingleThreadedExecutor; the control tick runs on its own thread sleeping to absolute deadlines
(measured: 2–6× less jitter than an rclpy timer, and MultiThreadedExecutor timers are unreliable with these
wheels). Incoming messages update the ROS-free `ControlStep` under a lock; the tick reads the latest of each.

Lifecycle: unconfigured → configure (load + verify the bundle, build the chain; any mismatch or unknown
parameter fails with the reason) → inactive → activate (control starts; also the only way to resume after an
e-stop release) → deactivate (publishes a hold, stops control) → cleanup. A restarted process always comes up
unconfigured, never active.

Episode bookkeeping (ends, roll-over, terminated vs truncated, intervention counts) is the ROS-free
`EpisodeSession`'s; this node forwards robot signals to it and applies the events it returns to the recorder.

Never silent: in both trigger modes a watchdog timer (`NodeWatchdog`) ticks in place of inputs that went quiet
for the observation timeout, so the chain publishes a hold; in the topic-triggered mode a rejected joint state
still ticks (and holds). Rejections, policy errors and watchdog ticks are counted on `/diagnostics`
(`NodeHealth`) and logged once per reason and second (`LogThrottle`).

Hot swap (`bundle_announce_topic`, issue 15): a learner's bundle announcements are verified off the control thread
by the ROS-free `BundleSwapper` and adopted only at an episode start; `~/rollback` returns to the previous bundle
there. Refusals, swaps and rollbacks are on `/diagnostics` (`policy_node/bundle_swap`), and each recorded episode
names the bundle that ran it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy._rclpy_pybind11 import RCLError
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, String, UInt8MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_rl.hil.announcement import AnnouncementError, BundleAnnouncement
from ros_nodes.core.bundle_swap import BundleSwapConfig, BundleSwapper, SwappableChunkPolicy
from ros_nodes.core.control_step import HumanInput
from ros_nodes.core.deployment import Deployment, PolicyNodeConfig, build_deployment, safety_params
from ros_nodes.core.episode_session import EpisodeSession, SessionEvent, write_events
from ros_nodes.core.learner_watch import LearnerWatch
from ros_nodes.core.log_throttle import LogThrottle
from ros_nodes.core.loop_stats import LoopStats
from ros_nodes.core.node_health import NodeHealth, loop_level, node_entries
from ros_nodes.core.node_watchdog import NodeWatchdog
from ros_nodes.core.step_stream import StepStream
from ros_nodes.core.swap_verify import deployment_verifier, swap_metadata
from ros_nodes.diagnostic_msgs_util import status_msg
from ros_nodes.hil_qos import ANNOUNCE_QOS, HEARTBEAT_REQUESTED_QOS, STREAM_QOS

COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
"""ros2_control's forward command controllers subscribe RELIABLE: a best-effort publisher would not match."""
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""Late joiners (recorders, dashboards) get the current intervention state."""

PARAM_DEFAULTS: dict[str, Any] = PolicyNodeConfig.parameter_defaults()
"""The node's own parameters (`PolicyNodeConfig`'s fields) with their defaults; `safety.*` ones come from YAML."""


def _stamp_s(msg: Any) -> float | None:
    """The header stamp in s; None for an unstamped message (a zero stamp: nothing to judge a clock by)."""
    stamp = msg.header.stamp
    if stamp.sec == 0 and stamp.nanosec == 0:
        return None
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


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
        self._episode_metadata: dict[str, str] = {}  # provenance of every recorded episode (fixed per configure)
        self._session: EpisodeSession | None = None  # kept after cleanup so the last run can still be reported
        self._stats: LoopStats | None = None
        self.received: dict[str, int] = {"joint_states": 0, "observations": 0, "teleop_commands": 0}
        """Messages taken per input kind (malformed ones included): the denominator of the rejection counters."""
        self._last_error = ""
        self._watchdog: NodeWatchdog | None = None
        self._watchdog_timer: Any = None
        self._throttle = LogThrottle(1.0)
        self._last_policy_error = ""
        self._policy_failing = False
        self._stream: StepStream | None = None  # the learner's step stream (`step_stream_topic`)
        self._learner: LearnerWatch | None = None  # the learner's heartbeat (`learner_status_topic`)
        self._swapper: BundleSwapper | None = None  # hot swap (`bundle_announce_topic`), built at configure
        self._swap_policy: SwappableChunkPolicy | None = None
        self._metadata_sha = ""  # the bundle `_episode_metadata` describes
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        self.create_service(SetBool, "~/estop", self._on_estop)
        self.create_service(Trigger, "~/end_episode", self._on_end_episode)
        self.create_service(Trigger, "~/rollback", self._on_rollback)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _LifecycleNodeMixin__on_change_state(self, req: Any, resp: Any) -> Any:
        """The `~/change_state` service: a transition the state machine cannot take now is refused
        (`success=False`), never raised. A supervisor whose first request's answer was lost may repeat it after
        it went through; Jazzy's rclpy then raises RCLError in this callback, and the exception killed the node."""
        try:
            return super()._LifecycleNodeMixin__on_change_state(req, resp)  # type: ignore[misc]
        except RCLError as exc:
            self.get_logger().warning(
                f"refused lifecycle transition {req.transition.id} ({req.transition.label or 'no label'}) in state "
                f"{self._state_machine.current_state[1]!r}: {exc}"
            )
            resp.success = False
            return resp

    @property
    def episodes(self) -> list[bool]:
        """Task success of each episode that ended in operation (robot end or step limit), in order."""
        return self._session.successes if self._session is not None else []

    @property
    def intervention_steps(self) -> int:
        """Steps on which a human drove, since the last configure."""
        return self._session.intervention_steps if self._session is not None else 0

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
        params = self._params()
        try:
            dep = build_deployment(params)
            swap_config = BundleSwapConfig.from_node_config(dep.config)
        except (ValueError, RuntimeError, OSError) as exc:  # BundleError is a ValueError
            self._last_error = f"configure refused: {exc}"
            self.get_logger().error(self._last_error)
            return TransitionCallbackReturn.FAILURE
        self._dep = dep
        self._metadata_sha = dep.policy.manifest.onnx_sha256
        if dep.config.bundle_announce_topic:
            # Hot swap: announced bundles are verified off the control thread and adopted at an episode start,
            # where the chunk executor resets its policy (`SwappableChunkPolicy.reset`); chain and arbiter stay.
            verify = deployment_verifier(dep, safety_params(params), swap_config.accept_unsigned_when_pinned)
            self._swapper = BundleSwapper(dep.policy, verify, swap_config)
            self._swap_policy = SwappableChunkPolicy(self._swapper, lambda: dep.session.episodes)
            dep.step.policy = self._swap_policy
        self._session = dep.session
        self._stats = LoopStats(1.0 / dep.control_hz)
        self._last_error = ""
        sc = dep.safety_config
        # The same timeout as the chain's observation watchdog: a tick after it is guaranteed to see stale input.
        self._watchdog = NodeWatchdog(1.0 / dep.control_hz, sc.stale_observation_periods * sc.control_period_s)
        self._last_policy_error, self._policy_failing = "", False
        self._create_io(dep)
        if dep.config.record_dir:
            from robot_rl.data.episode_record import RecorderConfig  # only when recording
            from robot_rl.data.mcap_writer import EpisodeRecorder

            self._recorder = EpisodeRecorder(RecorderConfig(directory=Path(dep.config.record_dir)))
            self._episode_metadata = dep.episode_metadata()
        self.get_logger().info(
            f"configured: bundle {dep.config.bundle_dir} ({dep.policy.manifest.onnx_sha256[:12]}), "
            f"{dep.robot.command.ros2_control} commands to {dep.command_topic} at {dep.control_hz:g} Hz"
        )
        trusted, trust = dep.trust_status()
        if not trusted:  # a bare `ros2 launch` of a dev bundle still runs, but says it is unauthenticated
            self.get_logger().warning(f"{trust}; pin it: expected_sha256:={dep.policy.manifest.onnx_sha256}")
        return TransitionCallbackReturn.SUCCESS

    def _create_io(self, dep: Deployment) -> None:
        sub = self.create_subscription
        # Creation order is handling order: rclpy's executor takes the subscriptions that one wait found ready in
        # the order they were created. The unstamped `/observations/<key>` come first, so a robot step's
        # observations are taken before its joint state (which ticks) and before its `episode_done`: created after
        # them, a tick paired this step's joints with the previous step's object and end-effector entries, and the
        # old episode's last observations arrived "after the done" and started the next episode.
        self._subs = [
            sub(
                Float64MultiArray,
                f"/observations/{key}",
                lambda m, k=key: self._on_observation(k, m),
                qos_profile_sensor_data,
            )
            for key in dep.step.assembler.layout.topic_keys
        ]
        self._subs += [
            sub(JointState, "/joint_states", self._on_joint_state, qos_profile_sensor_data),
            sub(Float64MultiArray, "/teleop/commands", self._on_teleop_command, COMMAND_QOS),
            sub(Bool, "/teleop/engaged", self._on_teleop_engaged, LATCHED_QOS),
            sub(Bool, "/robot_rl/is_success", self._on_success, 10),
            sub(Bool, "/robot_rl/terminated", self._on_terminated, 10),
            sub(Bool, "/robot_rl/episode_done", self._on_episode_done, 10),
        ]
        self._pubs = {
            "command": self.create_publisher(Float64MultiArray, dep.command_topic, COMMAND_QOS),
            "intervention": self.create_publisher(Bool, "/robot_rl/intervention", LATCHED_QOS),
        }
        if dep.config.bundle_announce_topic:  # latched: the learner's latest announcement arrives on (re)connect
            self._subs.append(sub(String, dep.config.bundle_announce_topic, self._on_announcement, ANNOUNCE_QOS))
        if dep.config.learner_status_topic:
            from rclpy.event_handler import SubscriptionEventCallbacks

            self._learner = LearnerWatch()
            events = SubscriptionEventCallbacks(liveliness=self._on_learner_liveliness)
            self._subs.append(
                sub(
                    String,
                    dep.config.learner_status_topic,
                    self._on_learner_status,
                    HEARTBEAT_REQUESTED_QOS,
                    event_callbacks=events,
                )
            )
        if dep.config.step_stream_topic:
            pub = self.create_publisher(UInt8MultiArray, dep.config.step_stream_topic, STREAM_QOS)
            self._pubs["steps"] = pub
            self._stream = StepStream(lambda data: pub.publish(UInt8MultiArray(data=data)), self._metadata_sha)
        if dep.config.publish_trajectory:
            self._pubs["trajectory"] = self.create_publisher(
                JointTrajectory, f"/{dep.controller}/joint_trajectory", COMMAND_QOS
            )
        self._pubs["intervention"].publish(Bool(data=False))

    def _destroy_io(self) -> None:
        if self._stream is not None:  # publish what is queued, then stop, before its publisher goes
            self._stream.close()
            self._stream = None
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
            self._apply(dep.session.begin(), wait=True)  # resets the control step
        self._active = True
        self._stop.clear()
        if self._watchdog is not None:
            self._watchdog.arm(self._now_s())
            self._watchdog_timer = self.create_timer(self._watchdog.period_s, self._on_watchdog_timer)
        if dep.config.trigger == "timer":
            self._thread = threading.Thread(target=self._control_loop, name="policy_control", daemon=True)
            self._thread.start()
        self.get_logger().info("active: control running")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._halt()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._halt()
        self._close()
        return TransitionCallbackReturn.SUCCESS

    def _halt(self) -> None:
        """Stop the loop, publish one hold and close the episode."""
        self._active = False
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.disarm()
        if self._watchdog_timer is not None:
            self.destroy_timer(self._watchdog_timer)
            self._watchdog_timer = None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        dep = self._dep
        if dep is None:
            return
        with self._lock:
            hold = dep.step.chain.hold_action(dep.step.assembler.joint_positions(dep.robot.command.joints))
            self._publish_command(dep, hold)
            self._apply(dep.session.finish(), wait=True)
        self._write_stats()

    def _close(self) -> None:
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
        self._destroy_io()
        if self._dep is not None:
            self._dep.step.close()  # the chunk planner's thread, if asynchronous planning started one
        if self._swapper is not None:
            self._swapper.close()
        self._swapper, self._swap_policy = None, None
        self._dep = None

    # ----- recording -----
    def _apply(self, events: tuple[SessionEvent, ...], *, wait: bool) -> None:
        """Write steps and close/open recorded episodes as the session decided. Caller holds the lock."""
        self._note_switch()
        if self._recorder is not None and events:
            write_events(self._recorder, events, self._episode_metadata, wait=wait)
        if self._stream is not None and events:
            self._stream.offer(events)

    def _note_switch(self) -> None:
        """After a session call: a hot swap or rollback made at the episode start it produced is logged, and the
        episodes opened from now on name the bundle that runs them. Caller holds the lock."""
        proxy, swapper, dep = self._swap_policy, self._swapper, self._dep
        if proxy is None or swapper is None or dep is None or proxy.sha256 == self._metadata_sha:
            return
        self._metadata_sha = proxy.sha256
        if self._stream is not None:
            self._stream.set_bundle(proxy.sha256)
        switch = proxy.last_switch
        if switch is not None:
            # One call site per severity: rclpy refuses a call site whose severity changes between calls.
            text = f"{switch.kind}: {switch.replaced_sha256[:12]} -> {switch.sha256[:12]} ({switch.reason})"
            if switch.kind == "rollback":
                self.get_logger().warning(text)
            else:
                self.get_logger().info(text)
        if self._recorder is not None:
            self._episode_metadata = swap_metadata(dep.episode_metadata(), proxy.policy, swapper.active_origin)

    # ----- subscriptions (executor thread) -----
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        dep = self._dep
        if dep is None:
            return
        arrival_ns = time.monotonic_ns()
        self.received["joint_states"] += 1
        asm = dep.step.assembler
        with self._lock:
            err = asm.update_joint_state(
                msg.name, msg.position, msg.velocity, arrival_s=self._now_s(), header_stamp_s=_stamp_s(msg)
            )
            faulted = bool(asm.fault)
        if err is not None:
            self._log_rejection(asm.last_rejection_kind, err, asm.rejected)
        # A rejected reading of our joints faults the source, and the tick then holds: it must not be skipped.
        # A foreign message (none of our joints) is not our robot's state and does not tick.
        if (err is None or faulted) and self._active and dep.config.trigger == "joint_states":
            self._tick(dep, arrival_ns)

    def _log_rejection(self, kind: str, reason: str, counts: dict[str, int]) -> None:
        dropped = self._throttle.admit(f"rejected/{kind}", time.monotonic())
        if dropped is not None:
            self.get_logger().warning(f"rejected {kind} (total {counts.get(kind, 0)}): {reason}")

    def _on_observation(self, key: str, msg: Float64MultiArray) -> None:
        dep = self._dep
        if dep is not None:
            self.received["observations"] += 1
            asm = dep.step.assembler
            with self._lock:
                err = asm.update_observation(key, msg.data, arrival_s=self._now_s())
            if err is not None:
                self._log_rejection(asm.last_rejection_kind, err, asm.rejected)

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
        dep = self._dep
        if dep is not None:
            with self._lock:
                dep.session.on_success(bool(msg.data))

    def _on_terminated(self, msg: Bool) -> None:
        dep = self._dep
        if dep is not None and self._active:
            with self._lock:
                dep.session.on_terminated(bool(msg.data))

    def _on_episode_done(self, msg: Bool) -> None:
        dep = self._dep
        if dep is not None and msg.data and self._active:
            with self._lock:
                # Closed at the next tick, with the flags then known; what arrived before now is the old episode.
                dep.session.on_episode_done(self._now_s())

    # ----- services -----
    def _on_estop(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        dep = self._dep
        if dep is None:
            res.success, res.message = False, "not configured"
            return res
        with self._lock:
            if req.data:
                dep.step.chain.engage_estop("service ~/estop")
                hold = dep.step.chain.hold_action(dep.step.assembler.joint_positions(dep.robot.command.joints))
                self._publish_command(dep, hold)  # hold now, not at the next tick
                res.message = "e-stop engaged (latched)"
            else:
                dep.step.chain.release_estop()
                res.message = "e-stop released; motion resumes only after deactivate + activate"
        res.success = True
        self.get_logger().warning(res.message)
        return res

    def _on_announcement(self, msg: String) -> None:
        """A learner announced a bundle: parse it strictly and queue it for verification (never blocks)."""
        swapper = self._swapper
        if swapper is None:
            return
        try:
            announcement = BundleAnnouncement.from_json(msg.data)
        except AnnouncementError as exc:
            swapper.note_malformed(str(exc))
            self.get_logger().warning(str(exc))
            return
        outcome = swapper.announce(announcement)
        if outcome.startswith("refused"):
            self.get_logger().warning(f"bundle announcement: {outcome}")
        else:
            self.get_logger().info(f"bundle announcement: {outcome}")

    def _on_learner_status(self, msg: String) -> None:
        if self._learner is not None:
            self._learner.on_status(msg.data, self._now_s())

    def _on_learner_liveliness(self, info: Any) -> None:
        watch = self._learner
        if watch is None:
            return
        was = watch.alive
        watch.on_liveliness(info.alive_count > 0, self._now_s())
        if was and not watch.alive:
            self.get_logger().warning("the learner's heartbeat lapsed: it is gone; the robot keeps its current bundle")

    def _on_rollback(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        """`~/rollback`: return to the previous bundle at the next episode start."""
        swapper = self._swapper
        if swapper is None:
            res.success, res.message = False, "hot swap is off (parameter bundle_announce_topic is empty)"
            return res
        res.success, res.message = swapper.request_rollback("service ~/rollback")
        self.get_logger().warning(f"~/rollback: {res.message}")
        return res

    def _on_end_episode(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        dep = self._dep
        if dep is None:
            res.success, res.message = False, "not configured"
            return res
        with self._lock:
            self._apply(dep.session.cut() if self._active else dep.session.finish("service"), wait=True)
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
        if traj is not None and dep.robot.command.ros2_control == "position":
            msg = JointTrajectory(joint_names=list(dep.robot.command.joints))
            point = JointTrajectoryPoint(positions=command.tolist())
            point.time_from_start.nanosec = int(1e9 / dep.control_hz)
            msg.points = [point]
            traj.publish(msg)

    def _tick(self, dep: Deployment, start_ns: int, *, by_watchdog: bool = False) -> None:
        with self._lock:
            if not dep.session.active:  # a joint-state tick that raced a deactivate
                return
            now_s = self._now_s()
            errors_before = dep.step.policy_errors
            out = dep.session.tick(now_s, self._human)
            rec = out.record
            if self._swapper is not None and self._swapper.awaiting_first_tick and dep.step.step > 0:
                self._swapper.first_tick()  # the new episode's first tick ran on the swapped-in bundle
            self._publish_command(dep, rec.executed_action)
            if rec.intervention_onset or rec.intervention_offset:
                self._pubs["intervention"].publish(Bool(data=rec.intervention))
            self._apply(out.events, wait=False)
            self._policy_failing = dep.step.policy_errors > errors_before
            if self._policy_failing:
                self._last_policy_error = rec.policy_error
            if self._watchdog is not None:
                self._watchdog.on_tick(now_s, by_watchdog=by_watchdog)
        if self._policy_failing and self._throttle.admit("policy_error", time.monotonic()) is not None:
            count = dep.step.policy_errors
            self.get_logger().error(f"policy call failed ({count} so far), holding: {rec.policy_error}")
        if by_watchdog and self._throttle.admit("watchdog", time.monotonic()) is not None:
            reasons = "; ".join(rec.safety_reasons) or "no hold reason"
            self.get_logger().warning(f"watchdog: inputs silent past the timeout, ticking in their place: {reasons}")
        if self._stats is not None and not by_watchdog:
            self._stats.add(time.monotonic_ns() - start_ns)

    def _on_watchdog_timer(self) -> None:
        """Tick in place of inputs that went quiet (both trigger modes): the chain then publishes a hold."""
        dep, watchdog = self._dep, self._watchdog
        if dep is None or watchdog is None or not self._active or not watchdog.due(self._now_s()):
            return
        self._tick(dep, time.monotonic_ns(), by_watchdog=True)

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
            "intervention_steps": self.intervention_steps,
            "last_error": self._last_error,
            "episodes": len(self.episodes),
            "successes": sum(self.episodes),
        }
        if dep is not None:
            out["safety"] = dict(dep.step.chain.counters)
            out["policy_errors"] = dep.step.policy_errors
            out["last_policy_error"] = self._last_policy_error
            out["watchdog_ticks"] = self._watchdog.watchdog_ticks if self._watchdog is not None else 0
            out["observation_rejections"] = dict(dep.step.assembler.rejected)
            out["episode_start_waits"] = dep.step.assembler.episode_start_waits
            out["received"] = dict(self.received)
            out["reward_hook_failures"] = dict(dep.step.hooks.failures)
            out["chunks"] = dep.step.chunk_stats().to_json()
            out["control_hz"] = dep.control_hz
            if self._swapper is not None:
                out["bundle_swap"] = self._swapper.stats().to_json()
            if self._stream is not None:
                out["step_stream"] = self._stream.stats()
            if self._learner is not None:
                out["learner"] = {"alive": self._learner.alive, "lost": self._learner.lost}
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
        watchdog_status = None
        if dep is not None:
            with self._lock:
                entries = list(dep.step.chain.diagnostics())
                if self._watchdog is not None:
                    watchdog_status = self._watchdog.status(self._now_s())
                    asm = dep.step.assembler
                    health = NodeHealth(
                        active=self._active,
                        rejected=dict(asm.rejected),
                        last_rejection=asm.last_rejection,
                        input_fault=asm.fault,
                        received=dict(self.received),
                        episode_start_waits=asm.episode_start_waits,
                        policy_errors=dep.step.policy_errors,
                        last_policy_error=self._last_policy_error,
                        policy_failing=self._policy_failing,
                        watchdog=watchdog_status,
                        chunks=dep.step.chunk_stats(),
                        stability=dep.step.stability_health(),
                    )
                    entries.extend(node_entries(health))
                if self._swapper is not None:
                    entries.append(self._swapper.stats().entry())
                if self._stream is not None:
                    entries.append(self._stream.entry())
                if self._learner is not None:
                    entries.append(self._learner.entry(self._now_s()))
            for e in entries:
                arr.status.append(status_msg(e.level, f"policy_node/{e.name}", e.message, dep.robot.robot, e.values))
        summary = self.loop_summary()
        loop = summary.get("loop", {})
        level = 2 if self._last_error else 0
        message = self._last_error or ("active" if self._active else "inactive")
        if watchdog_status is not None:
            level = loop_level(self._last_error, watchdog_status)
            if watchdog_status.stalled and not self._last_error:
                message = f"active but no command published for {watchdog_status.since_tick_s:.3g} s"
        arr.status.append(
            status_msg(
                level, "policy_node/loop", message, values={**loop, "intervention_steps": self.intervention_steps}
            )
        )
        if dep is not None:  # how the running model was authenticated (WARN "unpinned" without a pin)
            trusted, trust = dep.trust_status()
            if self._swapper is not None:
                swapper = self._swapper
                trust += f"; hot swap on: running {swapper.active_sha256[:12]} ({swapper.active_origin})"
            arr.status.append(status_msg(0 if trusted else 1, "policy_node/model", trust))
        self._diag_pub.publish(arr)


def _stop(node: PolicyNode) -> None:
    node._halt()  # publishes the hold and closes the episode while the context is valid
    node._close()


def main(args: list[str] | None = None) -> int:
    """Entry point `robot-rl-policy-node`: spin until SIGINT/SIGTERM, then hold and shut down."""
    from ros_nodes.spin import run_node

    return run_node(PolicyNode, args, _stop)


if __name__ == "__main__":
    sys.exit(main())
