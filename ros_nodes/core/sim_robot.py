"""A `sim` RobotTaskEnv playing a ros2_control robot: forward-command input, joint-state output, injectable faults.

ROS-free (the node in `ros_nodes/sim_robot_node.py` is a thin shell), single-threaded: the caller serializes
calls (the node holds one lock around them).

Data flow per control period: `apply_command` (physical units, actuated-joint order, like a
forward_command_controller's Float64MultiArray) → normalized action → `step()` → `RobotSnapshot` →
`sensor_output()` (faults: stop, drop, delay, freeze) → what gets published.

Command timeout (issue 11): with `command_timeout_s` set, a step that finds no valid command younger than the
timeout holds (zero velocity or effort; position: the last commanded target, or the measured position before any
command) until a fresh command arrives. It runs on sim time: the hazard is motion executed on a stale command, and
motion happens in sim time (a stalled physics thread moves nothing).

Expert suggestion (issue 15, opt-in with `expert=True`): after every reset and step the task's scripted expert
(`sim.experts`, which reads privileged simulator state) is asked what it would command from the new state;
`expert_command` is that suggestion in the physical units of the command interface. It is a sim-only channel, the
"eyes" of a scripted operator, never a sensor: faults do not touch it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_rl.core.robot import ROS2_CONTROL_INTERFACE
from robot_rl.safety.diagnostics import OK, WARN, DiagnosticEntry
from ros_nodes.core.command_timeout import CommandTimeout

JOINT_KEYS = ("joint_pos", "joint_vel")
"""Observation-layout entries carried by joint_states; every other entry is published on its own topic."""


@dataclass(frozen=True)
class FaultConfig:
    """Sensor faults injected into the joint-state/observation stream (not into ground-truth channels)."""

    drop_rate: float = 0.0
    """Fraction of sensor publications silently dropped, in [0, 1] (seeded RNG)."""
    delay_s: float = 0.0
    """Sensor latency (s of sim time): each publication carries the measurement from `delay_s` earlier."""
    freeze_after_s: float | None = None
    """From this sim time (s) on the sensor repeats the same measurement (same values, same stamp); None = never."""
    stop_publishing_after_s: float | None = None
    """From this sim time (s) on nothing is published; None = never."""
    seed: int = 0
    """Seed of the drop RNG."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.drop_rate) and 0.0 <= self.drop_rate <= 1.0):
            raise ValueError(f"drop_rate must be in [0, 1], got {self.drop_rate}")
        if not (math.isfinite(self.delay_s) and self.delay_s >= 0.0):
            raise ValueError(f"delay_s must be finite and >= 0, got {self.delay_s}")
        for name in ("freeze_after_s", "stop_publishing_after_s"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{name} must be None or finite and >= 0, got {v}")

    @property
    def any(self) -> bool:
        """True when some fault is configured."""
        return (
            self.drop_rate > 0.0
            or self.delay_s > 0.0
            or self.freeze_after_s is not None
            or self.stop_publishing_after_s is not None
        )


@dataclass(frozen=True)
class RobotSnapshot:
    """One measurement of the simulated robot (after a control period)."""

    time_s: float
    """Sim time (s), monotonic over the robot's life (it does not restart at episode resets)."""
    wall_time_s: float
    """The caller's clock at measurement (s); equals `time_s` when the caller gave none. Used for stamps."""
    joint_names: tuple[str, ...]
    positions: np.ndarray
    """[J] rad or m, in `joint_names` order."""
    velocities: np.ndarray
    """[J] rad/s or m/s."""
    efforts: np.ndarray
    """[J] N·m or N, or [0] when the simulation does not measure joint efforts (it does not today)."""
    observations: Mapping[str, np.ndarray]
    """Non-joint observation entries by name (layout order), e.g. ee_pos [3] m, ee_quat [4] (w, x, y, z)."""
    is_success: bool
    terminated: bool
    truncated: bool
    reward: float
    episode: int
    """Episode index (0-based, counts resets)."""
    episode_step: int
    """Control steps taken in this episode (0 right after reset)."""
    diverged: bool = False
    """The physics became numerically invalid; the episode ended as a truncation."""

    @property
    def episode_over(self) -> bool:
        """terminated or truncated."""
        return self.terminated or self.truncated


@dataclass
class CommandStats:
    """What happened to incoming commands."""

    accepted: int = 0
    rejected: int = 0
    clipped: int = 0
    """Accepted commands with some value outside the interface's physical range (clipped to it)."""
    last_reject_reason: str | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    """Rejections per kind: "length", "non_finite", "malformed"."""
    rejected_since_accepted: int = 0
    """Rejections since the last accepted command (a rejected command never refreshes the timeout)."""
    timeouts: int = 0
    """Times the command stream went quiet for longer than the command timeout (each hold counts once)."""


class SimRobot:
    """A RobotTaskEnv made by Gymnasium id and backend, driven like a ros2_control robot.

    Args:
        env_id: a `sim` id, e.g. "robot_rl/PandaReach-v0" (see sim/registry.py).
        backend: "mujoco" or "pybullet".
        seed: episode seed of the first reset (later resets continue the env's RNG stream).
        faults: sensor faults applied by `sensor_output`.
        episode_steps: episode length in control steps; 0 = the task's default.
        env_kwargs: more keyword arguments for `gymnasium.make` (e.g. interface="joint_position").
        command_timeout_s: hold when no valid command is younger than this (s of sim time, >= one control
            period); None = no timeout, for callers that step and command by hand (the ROS node always sets one,
            see `ros_nodes.core.command_timeout.default_command_timeout_s`).
        expert: compute the task's scripted expert's suggested command after every reset and step
            (`expert_command`); off by default (it costs an IK step per control period).

    Raises:
        ValueError: a bad argument, or `expert=True` for a task without a scripted expert.
    """

    def __init__(
        self,
        env_id: str = "robot_rl/PandaReach-v0",
        backend: str = "mujoco",
        seed: int = 0,
        faults: FaultConfig | None = None,
        episode_steps: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        command_timeout_s: float | None = None,
        expert: bool = False,
    ) -> None:
        import gymnasium as gym

        import sim  # noqa: F401 - registers the ids
        from sim.env import RobotTaskEnv

        if episode_steps < 0:
            raise ValueError(f"episode_steps must be >= 0, got {episode_steps}")
        kwargs: dict[str, Any] = {"backend": backend, **dict(env_kwargs or {})}
        if episode_steps:
            kwargs["max_steps"] = int(episode_steps)
        self._gym_env = gym.make(env_id, **kwargs)
        env = self._gym_env.unwrapped
        if not isinstance(env, RobotTaskEnv):
            self._gym_env.close()
            raise ValueError(f"{env_id!r} is not a robot_rl RobotTaskEnv (got {type(env).__name__})")
        self.env: RobotTaskEnv = env
        self.env_id = env_id
        self.backend = backend
        self.faults = faults or FaultConfig()
        self.interface = env.interface
        self.joint_names: tuple[str, ...] = tuple(env.robot.joints)
        self.actuated_joints: tuple[str, ...] = tuple(env.robot.actuated)
        self.command_interface: str = ROS2_CONTROL_INTERFACE[env.interface.name]
        self.control_hz: float = 1.0 / env.control_dt_s
        self.control_dt_s: float = env.control_dt_s
        self.observation_layout: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in env.observation_shapes.items()}
        missing = [k for k in JOINT_KEYS if k not in self.observation_layout]
        if missing:
            raise ValueError(f"{env_id!r} has no {missing} observation entries; joint_states cannot be filled")
        self.observation_keys: tuple[str, ...] = tuple(k for k in self.observation_layout if k not in JOINT_KEYS)
        """The non-joint observation entries, in layout order (each gets its own topic)."""
        self.command_stats = CommandStats()
        self.command_timeout: CommandTimeout | None = None
        """The command timeout on sim time; None = off."""
        if command_timeout_s is not None:
            try:
                self.set_command_timeout(command_timeout_s)
            except ValueError:
                self._gym_env.close()
                raise
        self._expert: Any = None
        if expert:
            from sim.errors import SimError

            try:
                self._expert = env.make_expert()
            except SimError as exc:
                self._gym_env.close()
                raise ValueError(f"{env_id!r}: cannot publish expert commands: {exc}") from None
        self._expert_command: np.ndarray | None = None
        self.expert_errors = 0
        """Control periods on which the expert raised or suggested a non-finite command (no suggestion then)."""
        self.last_expert_error: str | None = None
        self._total_steps = 0
        self._time_s = 0.0
        self._episode = -1
        self._seed: int | None = int(seed)
        self._fault_rng = np.random.default_rng(self.faults.seed)
        self._history: deque[RobotSnapshot] = deque()
        self._frozen: RobotSnapshot | None = None
        self._command_norm = np.zeros(len(self.actuated_joints))
        self._command_phys = np.zeros(len(self.actuated_joints))
        self._has_command = False
        self._drop_until_step = False
        self.last_command_stamp_s: float | None = None
        self._latest: RobotSnapshot = self.reset(seed)

    # ------------------------------------------------------------------ commands
    @property
    def command_low(self) -> np.ndarray:
        """[A] lowest physical command per actuated joint (units of `command_interface`)."""
        return np.asarray(self.interface.physical_low, dtype=np.float64).copy()

    @property
    def command_high(self) -> np.ndarray:
        """[A] highest physical command per actuated joint."""
        return np.asarray(self.interface.physical_high, dtype=np.float64).copy()

    @property
    def current_command(self) -> np.ndarray:
        """[A] the physical command being executed (the hold command until one is accepted)."""
        return self._command_phys.copy()

    @property
    def has_command(self) -> bool:
        """True once a command was accepted in this episode."""
        return self._has_command

    def set_command_timeout(self, timeout_s: float) -> None:
        """Turn the command timeout on (s of sim time, at least one control period); the timer starts afresh.

        Raises:
            ValueError: the timeout is not finite or shorter than one control period.
        """
        if not (math.isfinite(timeout_s) and timeout_s >= self.control_dt_s - 1e-12):
            raise ValueError(
                f"command_timeout_s must be >= one control period ({self.control_dt_s:g} s), got {timeout_s}:"
                " a shorter timeout would hold between two on-time commands"
            )
        self.command_timeout = CommandTimeout(timeout_s)

    def apply_command(self, values: Sequence[float] | np.ndarray, stamp_s: float | None = None) -> bool:
        """Take a physical command (actuated-joint order); returns False and keeps the previous one if malformed
        (a rejected command does not refresh the command timeout)."""
        if self._drop_until_step:
            return self._reject(
                "before_episode",
                "command received after the episode reset and before the new episode's first step: it was computed "
                "from the previous episode's state (dropped; the robot holds)",
            )
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            return self._reject("malformed", f"command is not a float vector: {exc}")
        n = len(self.actuated_joints)
        if arr.ndim != 1 or arr.shape[0] != n:
            return self._reject("length", f"command needs {n} values ({self.actuated_joints}), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            return self._reject("non_finite", f"command has non-finite values: {arr.tolist()}")
        low, high = self.command_low, self.command_high
        if np.any(arr < low) or np.any(arr > high):
            self.command_stats.clipped += 1
        self._command_phys = np.clip(arr, low, high)
        self._command_norm = np.asarray(self.interface.to_normalized(arr), dtype=np.float64)
        self._has_command = True
        self.command_stats.accepted += 1
        self.command_stats.rejected_since_accepted = 0
        self.last_command_stamp_s = stamp_s
        if self.command_timeout is not None:
            self.command_timeout.fresh(self._time_s)
        return True

    def _reject(self, kind: str, reason: str) -> bool:
        stats = self.command_stats
        stats.rejected += 1
        stats.rejected_since_accepted += 1
        stats.last_reject_reason = reason
        stats.rejected_by_reason[kind] = stats.rejected_by_reason.get(kind, 0) + 1
        return False

    def _hold(self) -> None:
        """Command that keeps the robot where it is: the current position target, or zero velocity/effort."""
        if self.interface.name == "joint_position":
            self._command_norm = np.asarray(self.interface.to_normalized(self.env.commanded_target), np.float64)
        else:
            self._command_norm = np.zeros(len(self.actuated_joints))
        self._command_phys = np.asarray(self.interface.to_physical(self._command_norm), dtype=np.float64)
        self._has_command = False

    @property
    def holding_on_timeout(self) -> bool:
        """True from a command timeout until the next accepted command."""
        return self.command_timeout is not None and self.command_timeout.timed_out

    @property
    def command_age_s(self) -> float | None:
        """Sim time since the last accepted command (s); None before the first or without a timeout."""
        return None if self.command_timeout is None else self.command_timeout.age_s(self._time_s)

    def command_diagnostics(self) -> DiagnosticEntry:
        """The command input's status for /diagnostics: WARN while holding on a timeout or while the latest
        commands are rejected, OK otherwise; counters and the age of the last valid command as values."""
        stats, watchdog = self.command_stats, self.command_timeout
        age = self.command_age_s
        age_text = "none yet" if age is None else f"{age:.3f}"
        values = {
            "interface": self.command_interface,
            "accepted": str(stats.accepted),
            "rejected": str(stats.rejected),
            **{f"rejected/{k}": str(v) for k, v in sorted(stats.rejected_by_reason.items())},
            "clipped": str(stats.clipped),
            "timeouts": str(stats.timeouts),
            "command_timeout_s": "off" if watchdog is None else f"{watchdog.timeout_s:g}",
            "last_command_age_s": age_text,
            "holding_on_timeout": str(self.holding_on_timeout).lower(),
            "last_reject_reason": stats.last_reject_reason or "",
        }
        parts: list[str] = []
        level = OK
        if watchdog is not None and watchdog.timed_out:
            level = WARN
            parts.append(
                f"holding: no valid command for {age_text} s (timeout {watchdog.timeout_s:g} s); "
                "resumes on a fresh command"
            )
        if stats.rejected_since_accepted:
            level = WARN
            parts.append(f"last {stats.rejected_since_accepted} command(s) rejected: {stats.last_reject_reason}")
        if not parts:
            if stats.accepted == 0:
                parts.append("holding: no command received yet")
            elif not self._has_command:
                parts.append(f"holding since the episode reset; last command {age_text} s ago")
            else:
                parts.append(f"executing commands (last {age_text} s ago)")
        return DiagnosticEntry("sim_robot/commands", level, "; ".join(parts), values)

    # ------------------------------------------------------------------ simulation
    @property
    def latest(self) -> RobotSnapshot:
        """The most recent true (fault-free) measurement."""
        return self._latest

    @property
    def episode_over(self) -> bool:
        """The current episode terminated or was truncated; `step` needs a `reset` first."""
        return self._latest.episode_over

    @property
    def time_s(self) -> float:
        """Sim time (s)."""
        return self._time_s

    def reset(
        self, seed: int | None = None, wall_time_s: float | None = None, *, drop_commands_until_step: bool = False
    ) -> RobotSnapshot:
        """Start a new episode; the command falls back to hold (a held velocity must not carry over).

        `drop_commands_until_step`: refuse commands (counted as `before_episode`) until the new episode's first
        `step`. The ROS node sets it: a controller that has not yet seen `episode_done` is still sending commands
        computed from the previous episode's last state, and one accepted after the reset would drive the fresh
        episode's first period with them.
        """
        obs, _ = self.env.reset(seed=seed)
        self._episode += 1
        self._hold()
        self._drop_until_step = drop_commands_until_step
        snap = self._snapshot(obs, reward=0.0, terminated=False, truncated=False, info={}, wall_time_s=wall_time_s)
        self._record(snap)
        if self._expert is not None:
            self._expert.reset()  # a new episode: phase machines and acceleration ramps start afresh
            self._suggest(obs)
        return snap

    def step(self, wall_time_s: float | None = None) -> RobotSnapshot:
        """Advance one control period with the current command.

        Raises:
            RuntimeError: the episode is over (call `reset`).
        """
        if self.episode_over:
            raise RuntimeError(f"episode {self._episode} is over (terminated or truncated); call reset()")
        self._drop_until_step = False  # from now on the controller can have seen this episode's state
        if self.command_timeout is not None and self.command_timeout.check(self._time_s):
            self._hold()  # the stale command stops here; only a fresh accepted command moves the robot again
            self.command_stats.timeouts += 1
        obs, reward, terminated, truncated, info = self.env.step(self._command_norm.astype(np.float32))
        self._total_steps += 1
        self._time_s = self._total_steps * self.control_dt_s  # no drift from summing dt
        snap = self._snapshot(obs, float(reward), bool(terminated), bool(truncated), info, wall_time_s)
        self._record(snap)
        if self._expert is not None:
            self._suggest(obs)
        return snap

    def _snapshot(
        self,
        obs: np.ndarray,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: Mapping[str, Any],
        wall_time_s: float | None,
    ) -> RobotSnapshot:
        # Split the flat observation by the documented layout order: this is exactly what the policy was trained
        # on (including observation noise/bias when randomization is on), not a privileged noise-free copy.
        flat = np.asarray(obs, dtype=np.float64).reshape(-1)
        named: dict[str, np.ndarray] = {}
        i = 0
        for key, shape in self.observation_layout.items():
            size = int(np.prod(shape)) if shape else 1
            named[key] = flat[i : i + size].reshape(shape).copy()
            i += size
        if i != flat.size:
            raise RuntimeError(f"observation has {flat.size} values but the layout describes {i}")
        return RobotSnapshot(
            time_s=self._time_s,
            wall_time_s=self._time_s if wall_time_s is None else float(wall_time_s),
            joint_names=self.joint_names,
            positions=named["joint_pos"],
            velocities=named["joint_vel"],
            efforts=np.zeros(0),
            observations={k: named[k] for k in self.observation_keys},
            is_success=bool(info.get("is_success", False)),
            terminated=terminated,
            truncated=truncated,
            reward=reward,
            episode=self._episode,
            episode_step=int(self.env._steps),
            diverged=bool(info.get("diverged", False)),
        )

    def _record(self, snap: RobotSnapshot) -> None:
        self._latest = snap
        self._history.append(snap)
        # Keep just enough history for the configured delay (plus the entry at/just before the cut).
        cut = snap.time_s - self.faults.delay_s
        while len(self._history) > 1 and self._history[1].time_s <= cut + 1e-12:
            self._history.popleft()

    # ------------------------------------------------------------------ expert suggestion
    @property
    def expert_enabled(self) -> bool:
        """True when the robot was built with `expert=True`."""
        return self._expert is not None

    @property
    def expert_command(self) -> np.ndarray | None:
        """[A] what the task's expert would command from the latest state (physical units of `command_interface`,
        within the command range); None when the expert is off or failed on this control period."""
        return None if self._expert_command is None else self._expert_command.copy()

    def _suggest(self, obs: np.ndarray) -> None:
        """Ask the expert once for the state just reached (it is stateful: exactly one call per period).

        The expert's own state (an acceleration ramp, the push phase machine) follows its suggestions, not the
        commands the robot actually executed: it is what the expert would do had it been driving all along.
        """
        expert = self._expert
        if expert is None:
            return
        try:
            norm = np.asarray(expert.act(obs), dtype=np.float64).reshape(-1)
        except Exception as exc:  # an expert bug must not stop the physics; the operator sees a stale stream
            self._expert_command = None
            self.expert_errors += 1
            self.last_expert_error = f"expert raised {exc!r}"
            return
        if norm.shape != (len(self.actuated_joints),) or not np.all(np.isfinite(norm)):
            self._expert_command = None
            self.expert_errors += 1
            self.last_expert_error = f"expert suggested {norm.tolist()} (non-finite or wrong length)"
            return
        phys = np.asarray(self.interface.to_physical(np.clip(norm, -1.0, 1.0)), dtype=np.float64)
        self._expert_command = np.clip(phys, self.command_low, self.command_high)

    # ------------------------------------------------------------------ faults
    def should_publish(self, time_s: float | None = None) -> bool:
        """Whether the sensor publishes now (stop and drop faults); consumes one drop draw per call."""
        t = self._time_s if time_s is None else time_s
        draw = float(self._fault_rng.random())  # drawn every call: the drop pattern depends on the seed only
        stop = self.faults.stop_publishing_after_s
        if stop is not None and t >= stop:
            return False
        return not draw < self.faults.drop_rate

    def sensor_output(self) -> RobotSnapshot | None:
        """What the faulty sensor publishes for the latest step: None (stopped/dropped), or a delayed/frozen copy."""
        if not self.should_publish():
            return None
        return self.sensed_snapshot()

    def sensed_snapshot(self) -> RobotSnapshot:
        """The measurement the sensor reports now (delay and freeze applied; stop/drop not)."""
        snap = self._latest
        if self.faults.delay_s > 0.0:
            cut = snap.time_s - self.faults.delay_s
            older = [s for s in self._history if s.time_s <= cut + 1e-12]
            snap = older[-1] if older else self._history[0]
        freeze = self.faults.freeze_after_s
        if freeze is not None and snap.time_s >= freeze:
            if self._frozen is None:
                self._frozen = snap
            return self._frozen
        return snap

    def close(self) -> None:
        """Release the physics engine."""
        self._gym_env.close()
