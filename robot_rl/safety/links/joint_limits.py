"""The final joint-limit clamp (`joint_limits`): position, velocity, acceleration and effort limits of the
configured command interface, as vectorized numpy functions (one call per step, no per-joint Python loops).

The four limits are one link with one counter key each (position_limit, velocity_limit, acceleration_limit,
effort_limit) because they are coupled: the rate limits act on the velocity a target implies, and braking before
a position limit depends on the acceleration limit; computing them in one pass keeps the output bit-exact and
idempotent (filtering a filtered action changes nothing). Each kernel appends `(key, reason)` for every limit
that changed the command. They assume finite input of the right shape: the `shape` and `non_finite` checks
before the clamp guarantee it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.inputs import F64
from robot_rl.safety.link import LinkBase, LinkKind, LinkOutput, Step

_FAR_RAD = 1e6

Changes = list[tuple[str, str]]
"""(link name, human-readable reason) in the order the links acted."""


@dataclass(frozen=True)
class JointLimits:
    """The config's limits as float64 arrays, built once so the control step does no conversions."""

    names: tuple[str, ...]
    """Joint names in command order."""
    lower_rad: F64
    """Lower position limits with the margin applied, rad."""
    upper_rad: F64
    """Upper position limits with the margin applied, rad."""
    mid_rad: F64
    """Midpoint of the (margined) position limits, rad."""
    velocity_rad_s: F64
    """Velocity limits, rad/s."""
    accel_rad_s2: F64
    """Acceleration limits, rad/s²."""
    inv_2accel: F64
    """1 / (2·a_max), s²/rad: turns v·|v| into the signed braking distance."""
    accel_period: F64
    """a_max · control period, rad/s: the velocity change allowed in one nominal step."""
    effort: F64
    """Effort limits (N·m or N); empty unless configured."""
    period_s: float
    """Nominal control period, s."""

    @classmethod
    def from_config(cls, cfg: SafetyConfig) -> JointLimits:
        """Arrays from a validated config."""
        m = cfg.position_margin_rad
        lower = np.asarray(cfg.position_lower_rad, dtype=np.float64) + m
        upper = np.asarray(cfg.position_upper_rad, dtype=np.float64) - m
        return cls(
            names=cfg.joint_names,
            lower_rad=lower,
            upper_rad=upper,
            mid_rad=0.5 * (lower + upper),
            velocity_rad_s=np.asarray(cfg.velocity_limit_rad_s, dtype=np.float64),
            accel_rad_s2=np.asarray(cfg.acceleration_limit_rad_s2, dtype=np.float64),
            inv_2accel=0.5 / np.asarray(cfg.acceleration_limit_rad_s2, dtype=np.float64),
            accel_period=np.asarray(cfg.acceleration_limit_rad_s2, dtype=np.float64) * cfg.control_period_s,
            effort=np.asarray(cfg.effort_limit, dtype=np.float64),
            period_s=cfg.control_period_s,
        )


def braking_speed(distance: F64, accel: F64, dt_s: float) -> F64:
    """Largest speed toward a limit `distance` away such that, after moving one step of `dt_s` at that speed,
    braking at `accel` still stops before the limit: v·dt + v²/(2a) ≤ d, solved for v ≥ 0.

    Written as 2ad / (sqrt((a·dt)² + 2ad) + a·dt) to avoid cancellation when d is small. Zero at or beyond
    the limit. The continuous-time stopping distance v²/(2a) bounds the discrete one, so a step that satisfies
    this always leaves a feasible (accel-limited) braking step next time.
    """
    a_dt = accel * dt_s
    # Capped so a wild measurement (1e308) cannot overflow to inf/inf = NaN; 1e6 rad is "no limit in sight".
    two_ad = 2.0 * accel * np.clip(distance, 0.0, _FAR_RAD)
    return two_ad / (np.sqrt(a_dt * a_dt + two_ad) + a_dt)


def _differs(a: F64, b: F64) -> bool:
    # count_nonzero(a != b) is exact and ~2x cheaper than np.array_equal on short vectors.
    return bool(np.count_nonzero(a != b))


def _describe(prefix: str, names: tuple[str, ...], before: F64, after: F64, unit: str) -> str:
    # Built only when a link changed something: string formatting is the slowest thing in the chain, so a step
    # that clips many joints names the largest change and counts the rest instead of formatting every joint.
    changed = np.flatnonzero(before != after).tolist()
    if len(changed) <= 2:
        parts = ", ".join(f"{names[i]} {float(before[i]):.6g} -> {float(after[i]):.6g}" for i in changed)
        return f"{prefix}: {parts} {unit}".rstrip()
    i = int(np.abs(after - before).argmax())
    return (
        f"{prefix}: {names[i]} {float(before[i]):.6g} -> {float(after[i]):.6g} {unit}".rstrip()
        + f" (largest of {len(changed)} joints changed)"
    )


def position_fast(u: F64, prev: F64, v_prev: F64, dt_s: float, lim: JointLimits) -> F64 | None:
    """The implied velocity (rad/s) if target `u` satisfies every position-interface bound, else None.

    One combined test (numpy calls, not arithmetic, dominate at 7 joints): |v| ≤ v_max, |v − v_prev| ≤ a_max·dt,
    and the point where the joint would stop braking at a_max lies inside the limits; that point lies beyond u
    in the direction of motion, so u is inside too. NaN and ±Inf fail it. Velocity comes from the clipped
    target, so a ±1e308 command cannot overflow (a u beyond a limit still fails through the stop point).
    """
    v_t = (np.minimum(np.maximum(u, lim.lower_rad), lim.upper_rad) - prev) / dt_s
    abs_v = np.abs(v_t)
    stop = u + v_t * abs_v * lim.inv_2accel
    a_dt = lim.accel_period if dt_s == lim.period_s else lim.accel_rad_s2 * dt_s
    excess = np.maximum(abs_v - lim.velocity_rad_s, np.abs(v_t - v_prev) - a_dt)
    excess = np.maximum(excess, np.maximum(stop - lim.upper_rad, lim.lower_rad - stop))
    return v_t if excess.max() <= 0.0 else None


def position_link(u: F64, prev: F64, v_prev: F64, dt_s: float, lim: JointLimits, changes: Changes) -> tuple[F64, F64]:
    """Position targets: limits, then |Δq| ≤ v_max·dt, |Δq/dt − v_prev| ≤ a_max·dt, then braking before limits.

    Returns (target rad, implied velocity rad/s). Joints no link touched keep the command's exact bits.
    """
    v_t = position_fast(u, prev, v_prev, dt_s, lim)
    if v_t is not None:
        return u, v_t
    return position_exact(u, prev, v_prev, dt_s, lim, changes)


def position_exact(u: F64, prev: F64, v_prev: F64, dt_s: float, lim: JointLimits, changes: Changes) -> tuple[F64, F64]:
    """`position_link` without the fast path: each link clips in turn and reports what it changed."""
    q = np.minimum(np.maximum(u, lim.lower_rad), lim.upper_rad)
    if _differs(q, u):
        changes.append(("position_limit", _describe("position_limit", lim.names, u, q, "rad")))
    else:
        q = u  # keep the command's exact bits (including the sign of zero)
    v_t = (q - prev) / dt_s
    vmax = lim.velocity_rad_s
    v = np.minimum(np.maximum(v_t, -vmax), vmax)
    # Rate reasons are in rad/s (implied velocity): no extra array work to report them.
    if _differs(v, v_t):
        changes.append(("velocity_limit", _describe("velocity_limit", lim.names, v_t, v, "rad/s")))
    if np.count_nonzero(v):  # a command equal to the previous target is a stop: stopping wins over accel limits
        a_dt = lim.accel_period if dt_s == lim.period_s else lim.accel_rad_s2 * dt_s
        v_a = np.minimum(np.maximum(v, v_prev - a_dt), v_prev + a_dt)
        if _differs(v_a, v):
            changes.append(("acceleration_limit", _describe("acceleration_limit", lim.names, v, v_a, "rad/s")))
        # Braking before the limits: without it the acceleration limit could make a limit unreachable to stop
        # at. Exact braking speeds are computed only when the stop point of this step leaves the limits.
        stop = prev + v_a * dt_s + v_a * np.abs(v_a) * lim.inv_2accel
        if np.maximum(stop - lim.upper_rad, lim.lower_rad - stop).max() > 0.0:
            up = braking_speed(lim.upper_rad - prev, lim.accel_rad_s2, dt_s)
            down = braking_speed(prev - lim.lower_rad, lim.accel_rad_s2, dt_s)
            v_b = np.minimum(np.maximum(v_a, -down), up)
            if _differs(v_b, v_a):
                changes.append(("position_limit", _describe("position_limit: braking", lim.names, v_a, v_b, "rad/s")))
            v_a = v_b
        v = v_a
    if not _differs(v, v_t):
        return q, v_t  # no rate link acted: the target is q itself (u's exact bits if nothing acted)
    # Rounding in prev + v·dt must not leave the limits: clip once more (a no-op in exact arithmetic).
    out = np.where(v == v_t, q, np.minimum(np.maximum(prev + v * dt_s, lim.lower_rad), lim.upper_rad))
    return out, (out - prev) / dt_s


NEXT_COMMAND_PERIODS = 3.0
"""Velocity interface: a command may stay in force this many control periods before the next one can brake —
up to the command timeout every robot must have (docs/deploy.md; the simulated robot's default is 3 periods),
after which the robot holds by itself. Braking room is kept for that long, so a late tick does not force a stop
harder than the acceleration limit."""

LAG_PERIODS = 4.0
"""How many control periods a joint reading may lag behind the commands already sent (velocity interface)."""


def predicted_position(prev_pred: F64 | None, v_prev: F64, elapsed_s: float, q_meas: F64, lim: JointLimits) -> F64:
    """Where the velocity commands sent so far put the joint now: the previous prediction advanced by the last
    command over the time since it was sent, kept within the distance the joint can travel in W = LAG_PERIODS·T
    (|v_prev|·W + a_max·W²/2) of the reading.

    A reading that lags (a stale message, a flood) would otherwise let the joint run closer to a limit than
    measured and then make braking abrupt when a fresh reading arrives; the band shrinks with the speed, so a
    robot that does not follow its commands (blocked, stopped) is never judged much further along than it is.
    """
    if prev_pred is None:
        return q_meas
    horizon_s = LAG_PERIODS * lim.period_s
    band = (np.abs(v_prev) + 0.5 * lim.accel_rad_s2 * horizon_s) * horizon_s
    q = prev_pred + v_prev * min(max(elapsed_s, 0.0), horizon_s)
    return np.minimum(np.maximum(q, q_meas - band), q_meas + band)


def step_prediction(step: Step, q_meas: F64, lim: JointLimits) -> F64:
    """`predicted_position` for this step from its previous prediction and velocity, computed once and kept on the
    step: the clamp, the cbf link and the chain's commit all judge from the same value."""
    q = step.q_pred
    if q is None:
        q = step.q_pred = predicted_position(step.prev_target, step.v_prev, step.dt_s, q_meas, lim)
    return q


def velocity_link(
    u: F64, q_meas: F64, v_prev: F64, dt_s: float, lim: JointLimits, changes: Changes, q_pred: F64 | None = None
) -> F64:
    """Velocity commands: |v| ≤ v_max, |v − v_prev| ≤ a_max·dt, then position prediction with braking.

    The prediction horizon is NEXT_COMMAND_PERIODS·T: q + v·3T (+ braking distance) stays inside the limits, with q
    the measured position or, toward each limit, the `predicted_position` `q_pred` when it is further along;
    beyond a limit only motion back inside is allowed. The position rule comes last and wins over the
    acceleration rule when both cannot hold (the measured position jumped beyond the commanded path).
    """
    n_before = len(changes)
    vmax = lim.velocity_rad_s
    v = np.minimum(np.maximum(u, -vmax), vmax)
    if _differs(v, u):
        changes.append(("velocity_limit", _describe("velocity_limit", lim.names, u, v, "rad/s")))
    if u.any():  # an all-zero command is a stop: stopping wins over the acceleration limit
        a_dt = lim.accel_rad_s2 * dt_s
        v_a = np.minimum(np.maximum(v, v_prev - a_dt), v_prev + a_dt)
        if _differs(v_a, v):
            changes.append(("acceleration_limit", _describe("acceleration_limit", lim.names, v, v_a, "rad/s")))
        v = v_a
    q_hi = q_meas if q_pred is None else np.maximum(q_meas, q_pred)
    q_lo = q_meas if q_pred is None else np.minimum(q_meas, q_pred)
    horizon_s = NEXT_COMMAND_PERIODS * lim.period_s
    up = braking_speed(lim.upper_rad - q_hi, lim.accel_rad_s2, horizon_s)
    down = braking_speed(q_lo - lim.lower_rad, lim.accel_rad_s2, horizon_s)
    v_p = np.minimum(np.maximum(v, -down), up)
    if _differs(v_p, v):
        # The braking rule, worded as in the position interface: "position_limit: j 1 -> 0.5 rad" is a clip.
        changes.append(("position_limit", _describe("position_limit: braking", lim.names, v, v_p, "rad/s")))
    return u if len(changes) == n_before else v_p


def effort_link(u: F64, q_meas: F64, lim: JointLimits, changes: Changes) -> F64:
    """Effort commands: |τ| ≤ limit; at or beyond a position limit, effort pushing further out becomes 0."""
    n_before = len(changes)
    emax = lim.effort
    tau = np.minimum(np.maximum(u, -emax), emax)
    if _differs(tau, u):
        changes.append(("effort_limit", _describe("effort_limit", lim.names, u, tau, "")))
    outward = ((q_meas >= lim.upper_rad) & (tau > 0.0)) | ((q_meas <= lim.lower_rad) & (tau < 0.0))
    if outward.any():
        guarded = np.where(outward, 0.0, tau)
        # Not "position_limit: j 5 -> 0", which would read like the effort clip (effort_limit) or a position.
        changes.append(
            ("position_limit", _describe("position_limit: outward effort at the limit", lim.names, tau, guarded, ""))
        )
        tau = guarded
    return u if len(changes) == n_before else tau


LIMIT_KEYS = ("position_limit", "velocity_limit", "acceleration_limit", "effort_limit")
"""Counter keys of the `joint_limits` link, one per limit."""


class JointLimitsLink(LinkBase):
    """The final clamp: the configured interface's position, velocity, acceleration and effort limits."""

    name = "joint_limits"
    kind: LinkKind = "clamp"

    def __init__(self, config: SafetyConfig, kinematics: object = None) -> None:
        """Args:
        config: the validated limits.
        kinematics: unused (the registry's factory signature).
        """
        super().__init__(LIMIT_KEYS)
        self.limits = JointLimits.from_config(config)
        """The config's limits as float64 arrays."""
        self._iface = config.command_interface

    def accepts(self, u: F64, prev: F64, v_prev: F64, dt_s: float) -> F64 | None:
        """The chain's fast path (position interface): the implied velocity if target `u` passes every limit
        unchanged, else None (also for NaN/Inf)."""
        return position_fast(u, prev, v_prev, dt_s, self.limits)

    def clip_position(self, q: F64) -> F64:
        """`q` clipped into the (margined) position limits."""
        return np.minimum(np.maximum(q, self.limits.lower_rad), self.limits.upper_rad)

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Clamp a finite command; hold when the limits cannot be applied (no basis to rate-limit from)."""
        changes: Changes = []
        lim = self.limits
        dt_s = step.control_dt_s
        if self._iface == "position":
            prev = step.prev_target
            if prev is None:
                q_meas = step.joint_pos_rad
                if q_meas is None:
                    return self.hold("no previous command and no valid joint measurement", "position_limit")
                prev = self.clip_position(q_meas)
            # The chain's failed fast test need not run twice.
            link_fn = position_exact if step.fast_pass is False else position_link
            out, _ = link_fn(action, prev, step.v_prev, dt_s, lim, changes)
        else:
            q_meas = step.joint_pos_rad
            if q_meas is None:
                return self.hold(f"no valid joint measurement ({self._iface} interface needs one)", "position_limit")
            if self._iface == "velocity":
                # For the velocity interface the chain's previous target is its predicted position.
                q_pred = step_prediction(step, q_meas, lim)
                out = velocity_link(action, q_meas, step.v_prev, dt_s, lim, changes, q_pred)
            else:
                out = effort_link(action, q_meas, lim, changes)
        if not changes:
            return out, ()
        merged: dict[str, str] = {}
        for key, reason in changes:  # one reason per key (position_limit may clip and brake in one step)
            merged[key] = f"{merged[key]}; {reason.removeprefix(key + ': ')}" if key in merged else reason
        return out, tuple(merged.items())
