"""The safety chain: e-stop → watchdogs → input checks → interface limits → workspace, with a certified hold.

Every step returns a finite action inside every bound, says which links changed it and why, and never raises
on bad input (NaN, ±Inf, wrong shapes or types, clock jumps): the hold action is the answer to all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.diagnostics import ERROR, OK, WARN, DiagnosticEntry
from robot_rl.safety.estop import EStopLatch
from robot_rl.safety.inputs import F64, all_finite, as_measurement, as_time, as_vector
from robot_rl.safety.links import (
    Changes,
    ForwardKinematics,
    JointLimits,
    effort_link,
    position_exact,
    position_fast,
    position_link,
    velocity_link,
    workspace_violation,
)
from robot_rl.safety.watchdog import ObservationLatch, check_command, check_observation

LINK_NAMES = (
    "estop",
    "observation_watchdog",
    "command_watchdog",
    "non_finite",
    "shape",
    "position_limit",
    "velocity_limit",
    "acceleration_limit",
    "workspace",
    "effort_limit",
)
"""Every link's name: keys of `SafetyChain.counters`, `safety/<link>` in diagnostics and metrics."""

_HOLD_LINKS = frozenset({"estop", "observation_watchdog", "command_watchdog", "non_finite", "shape", "workspace"})

_MIN_DT_FRACTION = 1e-6
"""Steps shorter than this fraction of the control period are clock faults (also keeps Δq/dt finite)."""


@dataclass(frozen=True, slots=True)
class ChainResult:
    """What the chain let through this step, and why it differs from the command."""

    action: F64
    """Command to send, float64 [n_joints] in config order; always finite and inside every bound."""
    held: bool
    """The hold action was substituted for the command."""
    reasons: tuple[str, ...]
    """Human-readable, one per link that changed something, e.g. "position_limit: j2 2.9 -> 2.8973 rad"."""
    changed_by: tuple[str, ...]
    """Names (from LINK_NAMES) of the links that changed the action, in the order they acted; () = unchanged."""


class SafetyChain:
    """Numpy-only safety filter between the policy (or a human) and the robot; one instance per robot."""

    def __init__(self, config: SafetyConfig, forward_kinematics: ForwardKinematics | None = None) -> None:
        """Args:
        config: the validated limits.
        forward_kinematics: joint positions [n] (config order, rad) → end-effector position [3] (m); required
            exactly when the config has a workspace box.

        Raises:
            ValueError: forward kinematics missing for a workspace box, or given without one.
        """
        if not isinstance(config, SafetyConfig):
            raise ValueError(f"config must be a SafetyConfig, got {type(config).__name__}")
        if config.has_workspace and forward_kinematics is None:
            raise ValueError(
                f"the workspace box {config.workspace_lower_m}..{config.workspace_upper_m} m needs forward_kinematics"
            )
        if forward_kinematics is not None and not config.has_workspace:
            # Probably a box forgotten in the YAML: an operator expecting a workspace limit would get none.
            raise ValueError("forward_kinematics was given but the config has no workspace box")
        if forward_kinematics is not None and not callable(forward_kinematics):
            raise ValueError(f"forward_kinematics must be callable, got {forward_kinematics!r}")
        self.config = config
        """The limits in force (frozen)."""
        self._fk = forward_kinematics
        self._lim = JointLimits.from_config(config)
        self._n = config.n_joints
        self._iface = config.command_interface
        self._period_s = config.control_period_s
        self._min_dt_s = _MIN_DT_FRACTION * config.control_period_s
        self._max_obs_age_s = config.stale_observation_periods * config.control_period_s
        self._estop = EStopLatch()
        self._counters = dict.fromkeys(LINK_NAMES, 0)
        self._counters["held"] = 0
        self._last_reason = dict.fromkeys(LINK_NAMES, "")
        self._last_changed_by: tuple[str, ...] = ()
        self._prev: F64 | None = None
        self._v_prev: F64 = np.zeros(self._n)
        self._last_now_s: float | None = None
        self._latch = ObservationLatch()

    # ------------------------------------------------------------------ state
    def reset(self, joint_pos_rad: np.ndarray | None) -> None:
        """Re-arm at activation: the previous command becomes a hold at the measured position (position
        interface) or zero (velocity, effort); the clock restarts and a fresh observation is required.
        E-stop state and counters are kept.
        """
        q = as_measurement(joint_pos_rad, self._n)
        # Velocity/effort: the previous command is zero, carried by _v_prev; _prev is the position target only.
        self._prev = None if q is None or self._iface != "position" else self._clip_position(q)
        self._v_prev = np.zeros(self._n)
        self._last_now_s = None
        self._latch = ObservationLatch()

    def hold_action(self, joint_pos_rad: np.ndarray | None) -> F64:
        """The action substituted when the chain holds (a fresh array, finite, inside the position limits).

        Position: the last committed command, else the measured position clipped into the limits, else the
        middle of the limits (a last resort: call `reset` with a measurement before moving). Velocity and
        effort: zeros.
        """
        return self._hold(as_measurement(joint_pos_rad, self._n))[0]

    # ------------------------------------------------------------------ e-stop
    def engage_estop(self, reason: str) -> None:
        """Latch the software e-stop: every following step holds until release and an explicit enable."""
        self._estop.engage(reason)

    def release_estop(self) -> None:
        """Unlatch the e-stop; the chain keeps holding ("estop: released, waiting for enable")."""
        self._estop.release()

    def enable(self) -> None:
        """Allow motion after a release (no-op when already enabled).

        Raises:
            RuntimeError: the e-stop is still engaged.
        """
        self._estop.enable()

    @property
    def estop_engaged(self) -> bool:
        """The software e-stop is latched."""
        return self._estop.engaged

    @property
    def motion_enabled(self) -> bool:
        """Commands can pass (e-stop neither engaged nor waiting for enable)."""
        return self._estop.enabled and not self._estop.engaged

    # ------------------------------------------------------------------ filtering
    def filter(
        self,
        command: object,
        *,
        now_s: float,
        joint_pos_rad: np.ndarray | None,
        joint_vel_rad_s: np.ndarray | None,
        observation_stamp_s: float | None,
        command_stamp_s: float | None,
    ) -> ChainResult:
        """Filter one command and commit the output as the previous command for rate limiting. Never raises.

        `joint_vel_rad_s` is accepted for the node's convenience and not used: rate limits are relative to
        the previous committed command, which the chain knows exactly.
        """
        result, prev, v_prev, now, latch = self._compute(
            command, now_s, joint_pos_rad, observation_stamp_s, command_stamp_s
        )
        self._prev, self._v_prev, self._latch = prev, v_prev, latch
        if now is not None:
            self._last_now_s = now
        counters = self._counters
        for link, reason in zip(result.changed_by, result.reasons, strict=True):
            counters[link] += 1
            self._last_reason[link] = reason
        if result.held:
            counters["held"] += 1
        self._last_changed_by = result.changed_by
        return result

    def preview(
        self,
        command: object,
        *,
        now_s: float,
        joint_pos_rad: np.ndarray | None,
        joint_vel_rad_s: np.ndarray | None,
        observation_stamp_s: float | None,
        command_stamp_s: float | None,
    ) -> ChainResult:
        """What `filter` would return, without changing any state (offline re-filtering, idempotence checks)."""
        return self._compute(command, now_s, joint_pos_rad, observation_stamp_s, command_stamp_s)[0]

    def _compute(
        self,
        command: object,
        now_s: object,
        joint_pos_rad: object,
        observation_stamp_s: object,
        command_stamp_s: object,
    ) -> tuple[ChainResult, F64 | None, F64, float | None, ObservationLatch]:
        now = as_time(now_s)
        latch = self._latch
        link, reason = "", ""
        dt_s = self._period_s
        if now is None:
            link, reason = "observation_watchdog", f"observation_watchdog: now_s={now_s!r} is not a finite time"
        else:
            # The watchdog latch advances even under an e-stop, so releasing it never resumes on stale data.
            latch, obs_reason = check_observation(latch, now, as_time(observation_stamp_s), self._max_obs_age_s)
            if self._last_now_s is not None:
                dt_s = now - self._last_now_s
            if dt_s < self._min_dt_s:
                link = "observation_watchdog"
                reason = f"observation_watchdog: clock step of {dt_s:.4g} s (clock went back or a repeated call)"
            elif obs_reason:
                link, reason = "observation_watchdog", obs_reason
            else:
                cmd_reason = check_command(now, as_time(command_stamp_s), self.config.command_timeout_s)
                if cmd_reason:
                    link, reason = "command_watchdog", cmd_reason
        estop_reason = self._estop.hold_reason()
        if estop_reason:
            link, reason = "estop", estop_reason
        u: F64 | None = None
        dt_s = min(dt_s, self._period_s)
        if not link:
            u, why = as_vector(command, self._n)
            if u is None:
                link, reason = "shape", f"shape: {why}"
            elif self._prev is not None and self._iface == "position":
                # Hot path: a command inside every bound passes as is. The combined test fails on NaN/Inf too,
                # so the finiteness check (and the measurement, needed only to hold) can wait for the slow path.
                v_t = position_fast(u, self._prev, self._v_prev, dt_s, self._lim)
                if v_t is not None:
                    ws = workspace_violation(self._fk, u, self._lim) if self._fk is not None else ""
                    if not ws:
                        return ChainResult(u, False, (), ()), u.copy(), v_t, now, latch
                    link, reason = "workspace", ws
        q_meas = as_measurement(joint_pos_rad, self._n)
        if not link and u is not None:
            if not all_finite(u):
                # NaN is never clipped (np.clip keeps it, ros2_control passes it): it means "no valid command".
                bad = ", ".join(f"{self._lim.names[i]}={u[i]}" for i in np.flatnonzero(~np.isfinite(u)))
                link, reason = "non_finite", f"non_finite: {bad}"
        if not link and u is not None:
            outcome = self._limit(u, q_meas, dt_s, fast_tried=self._prev is not None)
            if isinstance(outcome[0], ChainResult):
                return outcome[0], outcome[1], outcome[2], now, latch
            link, reason = outcome[0], outcome[1]
        hold, prev = self._hold(q_meas)
        # A hold is a stop: rate limits restart from rest.
        return ChainResult(hold, True, (reason,), (link,)), prev, np.zeros(self._n), now, latch

    def _limit(
        self, u: F64, q_meas: F64 | None, dt_s: float, *, fast_tried: bool
    ) -> tuple[ChainResult, F64 | None, F64] | tuple[str, str]:
        """The interface links on a finite command: (result, prev, v_prev) to commit, or (link, reason) to hold."""
        changes: Changes = []
        lim = self._lim
        if self._iface == "position":
            prev = self._prev
            if prev is None:
                if q_meas is None:
                    return "position_limit", "position_limit: no previous command and no valid joint measurement"
                prev = self._clip_position(q_meas)
            link_fn = position_exact if fast_tried else position_link
            out, v_new = link_fn(u, prev, self._v_prev, dt_s, lim, changes)
            if self._fk is not None:
                ws = workspace_violation(self._fk, out, lim)
                if ws:
                    return "workspace", ws
        elif q_meas is None:
            return "position_limit", f"position_limit: no valid joint measurement ({self._iface} interface needs one)"
        elif self._iface == "velocity":
            out = velocity_link(u, q_meas, self._v_prev, dt_s, lim, changes)
            v_new = out.copy()
            if self._fk is not None:
                ws = workspace_violation(self._fk, q_meas + out * self._period_s, lim)
                if ws:
                    return "workspace", ws
        else:
            out = effort_link(u, q_meas, lim, changes)
            v_new = self._v_prev
        if changes:
            merged: dict[str, str] = {}
            for link, reason in changes:  # one reason per link (position_limit may clip and brake in one step)
                merged[link] = f"{merged[link]}; {reason.removeprefix(link + ': ')}" if link in merged else reason
            result = ChainResult(out, False, tuple(merged.values()), tuple(merged))
        else:
            result = ChainResult(out, False, (), ())
        # The caller owns result.action; the chain keeps its own copy of a position target.
        return result, (out.copy() if self._iface == "position" else None), v_new

    def _hold(self, q_meas: F64 | None) -> tuple[F64, F64 | None]:
        """(hold action, previous command to commit) for the configured interface."""
        if self._iface != "position":
            return np.zeros(self._n), None
        if self._prev is not None:
            return self._prev.copy(), self._prev
        if q_meas is not None:
            q = self._clip_position(q_meas)
            return q.copy(), q
        # No basis for a target: the midpoint is returned but not committed, so the next real measurement
        # (not the midpoint) becomes the start of rate limiting.
        return self._lim.mid_rad.copy(), None

    def _clip_position(self, q: F64) -> F64:
        return np.minimum(np.maximum(q, self._lim.lower_rad), self._lim.upper_rad)

    # ------------------------------------------------------------------ reporting
    @property
    def counters(self) -> dict[str, int]:
        """Steps each link changed the action (every name in LINK_NAMES), plus "held": steps that held."""
        return dict(self._counters)

    def diagnostics(self) -> list[DiagnosticEntry]:
        """One entry per link (LINK_NAMES order) with its counter, last reason and whether it acted last step."""
        entries = []
        for link in LINK_NAMES:
            active = link in self._last_changed_by
            level = WARN if active and link in _HOLD_LINKS else OK
            message = self._last_reason[link] if active else "ok"
            if link == "estop" and self._estop.engaged:
                level, message = ERROR, f"engaged: {self._estop.reason}"
            elif link == "estop" and not self._estop.enabled:
                level, message = WARN, "released, waiting for enable"
            values = {
                "count": str(self._counters[link]),
                "last_reason": self._last_reason[link],
                "active": "true" if active else "false",
                "held_total": str(self._counters["held"]),
            }
            entries.append(DiagnosticEntry(f"safety/{link}", level, message, values))
        return entries
