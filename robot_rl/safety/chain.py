"""The safety chain: the config's ordered links (e-stop → watchdogs → input checks → filters → joint-limit clamp
→ checks such as the workspace box), with a certified hold.

Every step returns a finite action inside every bound, says which links changed it and why, and never raises
on bad input (NaN, ±Inf, wrong shapes or types, clock jumps): the hold action is the answer to all of them.
`build_chain(config, kinematics)` is the one factory the policy node and `eval --safety` use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robot_rl.safety.config import DEFAULT_LINKS, INPUT_LINKS, SafetyConfig
from robot_rl.safety.diagnostics import ERROR, OK, WARN, DiagnosticEntry
from robot_rl.safety.inputs import F64, as_measurement, as_time, as_vector
from robot_rl.safety.link import Link, LinkBase, Reason, Step, placeholder
from robot_rl.safety.links import (
    LIMIT_KEYS,
    PLAUSIBILITY_KEYS,
    EStopLink,
    JointLimitsLink,
    PlausibilityLink,
    WorkspaceLink,
)
from robot_rl.safety.links.joint_limits import LAG_PERIODS, step_prediction
from robot_rl.safety.links.workspace import ForwardKinematics
from robot_rl.safety.registry import BUILTIN_LINKS, make_link, needs_kinematics


def _counter_keys(links: Sequence[str]) -> tuple[str, ...]:
    keys: list[str] = []
    for name in links:
        keys.extend({"joint_limits": LIMIT_KEYS, "plausibility": PLAUSIBILITY_KEYS}.get(name, (name,)))
    return tuple(keys)


LINK_NAMES = _counter_keys(DEFAULT_LINKS)
"""Counter keys of the default chain, in order: keys of `SafetyChain.counters`, `safety/<key>` in diagnostics."""


@dataclass(frozen=True, slots=True)
class ChainResult:
    """What the chain let through this step, and why it differs from the command."""

    action: F64
    """Command to send, float64 [n_joints] in config order; always finite and inside every bound."""
    held: bool
    """The hold action was substituted for the command."""
    reasons: tuple[str, ...]
    """Human-readable, one per counter key that changed something, e.g. "position_limit: j2 2.9 -> 2.8973 rad"."""
    changed_by: tuple[str, ...]
    """Counter keys (see `SafetyChain.counters`) that changed the action, in the order they acted; () = unchanged."""


def build_chain(config: SafetyConfig, kinematics: object = None) -> SafetyChain:
    """The chain the config lists: what the policy node and `eval --safety` run.

    Args:
        config: the validated limits and `links`.
        kinematics: a `UrdfChain` (FK and Jacobian) or a callable q → end-effector position [3] (m); required
            when the config has a workspace box.

    Raises:
        ValueError: an unknown link, a link of the wrong kind for its place, or kinematics missing / unused.
    """
    return SafetyChain(config, kinematics)


class SafetyChain:
    """Numpy-only safety filter between the policy (or a human) and the robot; one instance per robot."""

    def __init__(self, config: SafetyConfig, forward_kinematics: ForwardKinematics | object | None = None) -> None:
        """Args:
        config: the validated limits; `config.links` names the links in order.
        forward_kinematics: a `UrdfChain`, or joint positions [n] (config order, rad) → end-effector position
            [3] (m); required exactly when the config has a workspace box (or a custom link uses it).

        Raises:
            ValueError: forward kinematics missing for a workspace box or given without any link to use it;
                a link that is unknown or stands where its kind may not (see `SafetyConfig.links`).
        """
        if not isinstance(config, SafetyConfig):
            raise ValueError(f"config must be a SafetyConfig, got {type(config).__name__}")
        kin = forward_kinematics
        if kin is not None and not callable(kin) and not callable(getattr(kin, "position", None)):
            raise ValueError(f"forward_kinematics must be callable, got {kin!r}")
        if kin is not None and all(n in BUILTIN_LINKS for n in config.links) and not needs_kinematics(config):
            # Probably a box forgotten in the YAML: an operator expecting a workspace limit would get none.
            raise ValueError("forward_kinematics was given but the config has no workspace box (and no cbf link)")
        self.config = config
        """The limits in force (frozen)."""
        self.links: tuple[Link, ...] = tuple(make_link(name, config, kin) for name in config.links)
        """The links, in the config's order."""
        _check_kinds(self.links, config.links)
        by_name = {link.name: link for link in self.links}
        estop, clamp = by_name["estop"], by_name["joint_limits"]
        if not isinstance(estop, EStopLink) or not isinstance(clamp, JointLimitsLink):
            raise ValueError("the 'estop' and 'joint_limits' links are built in and cannot be replaced")
        self._estop = estop.latch
        self._clamp = clamp
        n_gates = next(i for i, link in enumerate(self.links) if link.kind != "gate")
        self._gates = self.links[:n_gates]
        self._body = self.links[n_gates:]
        i_clamp = self.links.index(clamp)
        # The fast path: the clamp's combined bound test proves the input checks and the clamp would pass the raw
        # command unchanged, so only the checks after the clamp run. It needs nothing but those checks between
        # the gates and the clamp (a filter there could change the command before the clamp sees it).
        between = self.links[n_gates:i_clamp]
        self._fast = config.command_interface == "position" and all(link.name in INPUT_LINKS for link in between)
        # A workspace link without a box passes everything: the fast path need not call it.
        self._after_clamp = tuple(
            link for link in self.links[i_clamp + 1 :] if not (isinstance(link, WorkspaceLink) and link.box is None)
        )
        self._stateful = tuple(link for link in self.links if _has_state(link))
        self._sensors = tuple(link for link in self.links if isinstance(link, PlausibilityLink))
        self._n = config.n_joints
        self._iface = config.command_interface
        self._period_s = config.control_period_s
        self._held = 0
        self._last_changed_by: tuple[str, ...] = ()
        self._prev: F64 | None = None
        self._v_prev: F64 = np.zeros(self._n)
        self._sent = False  # a step was committed: its output is the anchor every reset keeps
        self._last_now_s: float | None = None

    # ------------------------------------------------------------------ state
    def reset(self, joint_pos_rad: np.ndarray | None, *, reanchor: bool = False) -> None:
        """Re-arm at activation, episode roll-over or hand-back: rate and acceleration limits stay relative to
        the last command actually sent (position: its target and implied velocity; velocity: its value; after a
        hold: the held target, at rest). A chain that never sent a command anchors at the measured position,
        at rest, and only at a plausible one. The clock restarts and a fresh observation is required; e-stop
        state, counters and a sensor fault in progress are kept.

        Args:
            joint_pos_rad: the measured joint positions [n] (rad).
            reanchor: the robot itself was re-initialized (a simulator's `env.reset` moved it and stopped it, as in
                `eval --safety`): anchor at the measured position, at rest, when it is plausible. Never for a
                roll-over on a running robot: re-anchoring there once made one implausible reading (10 rad on a
                ±2.9 rad joint) a 2.9 rad step in one tick.
        """
        for link in self.links:
            link.reset()
        if reanchor or not self._sent or (self._iface == "position" and self._prev is None):
            q = as_measurement(joint_pos_rad, self._n)
            plausible = q is not None and all(link.position_plausible(q) for link in self._sensors)
            if plausible and q is not None:
                self._prev = self._clamp.clip_position(q) if self._iface == "position" else None
                self._v_prev = np.zeros(self._n)
        self._last_now_s = None

    def hold_action(self, joint_pos_rad: np.ndarray | None) -> F64:
        """The action substituted when the chain holds (a fresh array, finite, inside the position limits).

        Position: the last committed command, else the measured position clipped into the limits, else the
        middle of the limits (a last resort: call `reset` with a measurement before moving). Velocity and
        effort: zeros.
        """
        q = as_measurement(joint_pos_rad, self._n)
        if q is not None and not all(link.position_plausible(q) for link in self._sensors):
            q = None  # an implausible reading is never a target
        return self._hold(q)[0]

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
        measurement_stamp_s: float | None = None,
    ) -> ChainResult:
        """Filter one command and commit the output as the previous command for rate limiting. Never raises.

        `joint_vel_rad_s` and `measurement_stamp_s` (the joint reading's own header stamp) feed the
        `plausibility` link; rate limits are relative to the previous committed command, which the chain knows
        exactly.
        """
        result, prev, v_prev, now, acted = self._compute(
            command, now_s, joint_pos_rad, observation_stamp_s, command_stamp_s, joint_vel_rad_s, measurement_stamp_s
        )
        self._prev, self._v_prev = prev, v_prev
        self._sent = True
        if now is not None:
            self._last_now_s = now
        for link in self._stateful:
            link.commit()
        for link, (key, reason) in acted:
            link.record(key, reason)
        if result.held:
            self._held += 1
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
        measurement_stamp_s: float | None = None,
    ) -> ChainResult:
        """What `filter` would return, without changing any state (offline re-filtering, idempotence checks)."""
        return self._compute(
            command, now_s, joint_pos_rad, observation_stamp_s, command_stamp_s, joint_vel_rad_s, measurement_stamp_s
        )[0]

    def _compute(
        self,
        command: object,
        now_s: object,
        joint_pos_rad: object,
        observation_stamp_s: object,
        command_stamp_s: object,
        joint_vel_rad_s: object = None,
        measurement_stamp_s: object = None,
    ) -> tuple[ChainResult, F64 | None, F64, float | None, list[tuple[Link, Reason]]]:
        n, period = self._n, self._period_s
        now = as_time(now_s)
        dt_s = now - self._last_now_s if now is not None and self._last_now_s is not None else period
        control_dt_s = min(dt_s, period)
        u, why = as_vector(command, n)
        prev = self._prev
        v_fast: F64 | None = None
        fast_pass: bool | None = None
        if self._fast and u is not None and prev is not None and dt_s > 0.0:
            # Hot path: a command inside every bound passes as is. The combined test fails on NaN/Inf too,
            # so the finiteness check (and the measurement, needed only to hold) can wait for the slow path.
            v_fast = self._clamp.accepts(u, prev, self._v_prev, control_dt_s)
            fast_pass = v_fast is not None
        step = Step(
            now,
            now_s,
            dt_s,
            control_dt_s,
            joint_pos_rad,
            n,
            as_time(observation_stamp_s),
            as_time(command_stamp_s),
            why,
            prev,
            self._v_prev,
            fast_pass,
            joint_vel_rad_s,
            as_time(measurement_stamp_s),
        )
        action = u if u is not None else placeholder(n)
        hold: tuple[Link, Reason] | None = None
        for gate in self._gates:  # every gate runs (latches advance); the first to hold gives the reason
            out, reasons = gate.filter(action, step)
            if out is None and hold is None:
                hold = (gate, reasons[0])
        if hold is not None:
            return self._held_result(step, hold)
        acted: list[tuple[Link, Reason]] = []
        if v_fast is not None:
            for link in self._after_clamp:  # checks only: pass or hold
                out, reasons = link.filter(action, step)
                if out is None or reasons:
                    return self._held_result(step, (link, reasons[0]) if reasons else (link, _no_reason(link)))
            return ChainResult(action, False, (), ()), action.copy(), v_fast, now, acted
        for link in self._body:
            out, reasons = link.filter(action, step)
            if out is None:
                return self._held_result(step, (link, reasons[0] if reasons else _no_reason(link)))
            if reasons:
                if link.kind in ("check", "gate"):  # a check passes or holds: a change means "cannot prove safe"
                    return self._held_result(step, (link, reasons[0]))
                acted.extend((link, r) for r in reasons)
            action = out
        if acted:
            result = ChainResult(action, False, tuple(r for _, (_, r) in acted), tuple(k for _, (k, _) in acted))
        else:
            result = ChainResult(action, False, (), ())
        return result, *self._next_state(action, step), now, acted

    def _next_state(self, action: F64, step: Step) -> tuple[F64 | None, F64]:
        """(previous target, previous velocity) to commit after sending `action`."""
        if self._iface == "velocity":
            # Kept as the "previous target": where the commands sent so far put the joint (braking reference).
            return self._velocity_prediction(step, step.joint_pos_rad), action.copy()
        if self._iface == "effort":
            return None, self._v_prev
        start = step.prev_target
        if start is None:
            q = step.joint_pos_rad
            start = self._clamp.clip_position(q) if q is not None else action
        # The caller owns result.action; the chain keeps its own copy of a position target.
        return action.copy(), (action - start) / step.control_dt_s

    def _velocity_prediction(self, step: Step, q_meas: F64 | None) -> F64 | None:
        """Velocity interface: where the commands sent so far put the joint now (`predicted_position`); without
        a usable reading, the previous prediction advanced by the last command; None when there is neither."""
        if q_meas is not None:
            return step_prediction(step, q_meas, self._clamp.limits)  # the links' value, when they computed it
        if step.prev_target is None:
            return None
        horizon_s = LAG_PERIODS * self._period_s
        return step.prev_target + self._v_prev * min(max(step.dt_s, 0.0), horizon_s)

    def _held_result(
        self, step: Step, hold: tuple[Link, Reason]
    ) -> tuple[ChainResult, F64 | None, F64, float | None, list[tuple[Link, Reason]]]:
        # A suspect reading must not become the hold target (nor the anchor it commits).
        suspect = any(link.measurement_suspect for link in self._sensors)
        q_meas = None if suspect else step.joint_pos_rad
        action, prev = self._hold(q_meas)
        if self._iface == "velocity":
            # The predicted position survives a hold (the joint stops where the commands sent so far put it):
            # restarting it from a stale reading would let the next commands run closer to a limit than known.
            prev = self._velocity_prediction(step, q_meas)
        key, reason = hold[1]
        # A hold is a stop: rate limits restart from rest.
        return ChainResult(action, True, (reason,), (key,)), prev, np.zeros(self._n), step.now_s, [hold]

    def _hold(self, q_meas: F64 | None) -> tuple[F64, F64 | None]:
        """(hold action, previous command to commit) for the configured interface."""
        if self._iface != "position":
            return np.zeros(self._n), None
        if self._prev is not None:
            return self._prev.copy(), self._prev
        if q_meas is not None:
            q = self._clamp.clip_position(q_meas)
            return q.copy(), q
        # No basis for a target: the midpoint is returned but not committed, so the next real measurement
        # (not the midpoint) becomes the start of rate limiting.
        return self._clamp.limits.mid_rad.copy(), None

    # ------------------------------------------------------------------ reporting
    @property
    def counters(self) -> dict[str, int]:
        """Steps each counter key changed the action (every key of every link, `LINK_NAMES` for the default
        chain), plus "held": steps that held."""
        out: dict[str, int] = {}
        for link in self.links:
            out.update(link.counters)
        out["held"] = self._held
        return out

    def diagnostics(self) -> list[DiagnosticEntry]:
        """One entry per counter key (link order) with its count, last reason and whether it acted last step."""
        entries = []
        for link in self.links:
            hold_kind = link.kind in ("gate", "check")
            counts, last = link.counters, link.last_reasons
            for key in link.keys:
                active = key in self._last_changed_by
                level = WARN if active and hold_kind else OK
                if active and isinstance(link, PlausibilityLink):
                    level = ERROR  # a sensor fault, not a routine hold
                message = last.get(key, "") if active else "ok"
                if key == "estop" and self._estop.engaged:
                    level, message = ERROR, f"engaged: {self._estop.reason}"
                elif key == "estop" and not self._estop.enabled:
                    level, message = WARN, "released, waiting for enable"
                values = {
                    "count": str(counts.get(key, 0)),
                    "last_reason": last.get(key, ""),
                    "active": "true" if active else "false",
                    "held_total": str(self._held),
                }
                entries.append(DiagnosticEntry(f"safety/{key}", level, message, values))
        return entries


def _no_reason(link: Link) -> Reason:
    return link.keys[0], f"{link.keys[0]}: held (no reason given)"


def _has_state(link: Link) -> bool:
    """Whether `commit` does anything (LinkBase's does not: the hot path skips it)."""
    return getattr(type(link), "commit", None) is not LinkBase.commit


def _check_kinds(links: Sequence[Link], names: Sequence[str]) -> None:
    """The kind rules config validation cannot see for custom links (it knows only their names).

    Raises:
        ValueError: a gate after a non-gate, a filter after the clamp, a second clamp, a duplicate name, or a
            link that reads the command before the input checks.
    """
    kinds = [f"{name} ({link.kind})" for name, link in zip(names, links, strict=True)]
    seen: set[str] = set()
    for link in links:
        if link.name in seen:
            raise ValueError(f"two links are named {link.name!r}: {kinds}")
        seen.add(link.name)
    first_body = next((i for i, link in enumerate(links) if link.kind != "gate"), len(links))
    late_gates = [names[i] for i, link in enumerate(links) if link.kind == "gate" and i > first_body]
    if late_gates:
        raise ValueError(
            f"gate links {late_gates} must come before every other link (e-stop and watchdogs first): {kinds}"
        )
    clamps = [i for i, link in enumerate(links) if link.kind == "clamp"]
    if len(clamps) != 1:
        raise ValueError(f"exactly one clamp link (joint_limits) is allowed, got {[names[i] for i in clamps]}: {kinds}")
    after = [names[i] for i in range(clamps[0] + 1, len(links)) if links[i].kind != "check"]
    if after:
        raise ValueError(f"only check links may follow the final clamp joint_limits, got {after}: {kinds}")
    inputs_last = max(names.index(k) for k in INPUT_LINKS)
    early = [names[i] for i in range(first_body, inputs_last) if names[i] not in INPUT_LINKS]
    if early:
        raise ValueError(f"links {early} read the command before the input checks {list(INPUT_LINKS)}: {kinds}")
