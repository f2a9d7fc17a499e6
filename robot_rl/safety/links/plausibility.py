"""Plausibility of the robot's state (`plausibility`): a well-formed but physically impossible joint reading is a
sensor fault, and the chain holds until the readings are plausible again.

A gate, not a check: it decides from the measurement alone, and gates run on every step (also while another gate
holds), so the recovery count advances on every new reading. Four rules, one counter key each:

- `plausibility_position`: a joint outside its (unmargined) position limits by more than
  `plausibility_position_margin_rad`;
- `plausibility_jump`: the change since the previous reading is more than
  `plausibility_velocity_factor` · v_max · (elapsed + one control period) + `plausibility_jump_slack_rad`
  (the elapsed time is the chain's clock, never the reading's own stamp, which a sensor fault could forge);
- `plausibility_velocity`: a measured |velocity| above `plausibility_velocity_factor` · v_max;
- `plausibility_stamp`: the reading's stamp goes backwards, or runs ahead of the chain clock's advance by more than
  `plausibility_stamp_jump_s` (alternating clocks trip it both ways).

After a fault the link keeps holding under `plausibility` until `plausibility_recovery_readings` consecutive new
readings were plausible. While it holds, the chain neither anchors rate limits at the measurement nor re-anchors
at `reset` (see `SafetyChain`): the hold is the last commanded target (position) or zero (velocity, effort).
"""

from __future__ import annotations

import numpy as np

from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.inputs import F64
from robot_rl.safety.link import LinkBase, LinkKind, LinkOutput, Step

_DAY_S = 86400.0
_FAR_RAD = 1e6

PLAUSIBILITY_KEYS = (
    "plausibility_position",
    "plausibility_jump",
    "plausibility_velocity",
    "plausibility_stamp",
    "plausibility",
)
"""Counter keys: one per rule, then `plausibility` for the steps held while waiting for plausible readings."""


class PlausibilityLink(LinkBase):
    """Hold on an implausible joint reading (a sensor fault) until enough plausible readings followed."""

    name = "plausibility"
    kind: LinkKind = "gate"

    def __init__(self, config: SafetyConfig, kinematics: object = None) -> None:
        """Args:
        config: the limits and the `plausibility_*` parameters.
        kinematics: unused (the registry's factory signature).
        """
        super().__init__(PLAUSIBILITY_KEYS)
        self._names = config.joint_names
        margin = config.plausibility_position_margin_rad
        self._lower = np.asarray(config.position_lower_rad, dtype=np.float64) - margin
        self._upper = np.asarray(config.position_upper_rad, dtype=np.float64) + margin
        factor = config.plausibility_velocity_factor
        self._vmax = factor * np.asarray(config.velocity_limit_rad_s, dtype=np.float64)
        self._slack_rad = config.plausibility_jump_slack_rad
        # (lower, upper, v_max) per joint as Python floats: the every-tick test of a 7-joint reading is cheaper as
        # one loop over floats than as a dozen numpy calls on 7-element arrays.
        self._bounds = tuple(zip(self._lower.tolist(), self._upper.tolist(), self._vmax.tolist(), strict=True))
        self._stamp_jump_s = config.plausibility_stamp_jump_s
        self._period_s = config.control_period_s
        self._recovery = config.plausibility_recovery_readings
        # Committed state: the previous reading (positions, its identity stamp, the chain clock when seen) and
        # how many more plausible readings are needed before commands pass again (0: passing).
        self._q_prev: F64 | None = None
        self._stamp_prev: float | None = None
        self._now_prev: float | None = None
        self._wait = 0
        self._pending: tuple[F64 | None, float | None, float | None, int] = (None, None, None, 0)
        self._suspect = False

    @property
    def faulted(self) -> bool:
        """The last committed step held for a sensor fault or was still waiting for plausible readings."""
        return self._wait > 0

    @property
    def measurement_suspect(self) -> bool:
        """The step last given to `filter` held: its measurement must not anchor the chain's rate limits."""
        return self._suspect

    def position_plausible(self, q: F64 | None) -> bool:
        """`q` is a reading the chain may anchor at: inside the limits plus margin, and no fault pending."""
        if q is None or self._wait > 0:
            return False
        return bool(np.all((q >= self._lower) & (q <= self._upper)))

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Judge this step's reading; hold on a fault and while waiting for plausible readings."""
        self._pending = (self._q_prev, self._stamp_prev, self._now_prev, self._wait)
        q = step.joint_pos_rad
        now = step.now_s
        stamp = step.measurement_stamp_s if step.measurement_stamp_s is not None else step.observation_stamp_s
        if q is None or now is None:
            # Nothing to judge (the watchdogs and the clamp hold on a missing reading or clock).
            return self._verdict(action, None)
        if stamp is not None and stamp == self._stamp_prev and _same(q, self._q_prev):
            return self._verdict(action, None)  # the same reading seen again: it proves nothing new
        faults = self._faults(q, step.joint_vel_rad_s, stamp, now)
        wait = self._recovery if faults else max(self._wait - 1, 0)
        # Kept within ±1e6 rad, so the next jump test cannot overflow on a ±1e308 reading (still a fault there).
        self._pending = (np.clip(q, -_FAR_RAD, _FAR_RAD) if faults else q, stamp, now, wait)
        return self._verdict(action, faults[0] if faults else None, tuple(faults[1:]))

    def _verdict(
        self, action: F64, fault: tuple[str, str] | None, more: tuple[tuple[str, str], ...] = ()
    ) -> LinkOutput:
        wait = self._pending[3]
        self._suspect = fault is not None or wait > 0
        if fault is not None:
            key, text = fault
            also = "".join(f"; also {k}: {t}" for k, t in more)
            return None, ((key, f"{key}: {text}{also}"),)
        if wait > 0:
            return None, (
                ("plausibility", f"plausibility: sensor fault, waiting for {wait} more plausible reading(s)"),
            )
        return action, ()

    def _faults(self, q: F64, v: F64 | None, stamp: float | None, now: float) -> list[tuple[str, str]]:
        if self._plausible(q, v, stamp, now):
            return []  # the common case, in a few numpy calls; the reasons below are built only on a fault
        faults: list[tuple[str, str]] = []
        outside = (q < self._lower) | (q > self._upper)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            faults.append(
                (
                    "plausibility_position",
                    f"{self._names[i]} reads {float(q[i]):.6g} rad, outside "
                    f"[{float(self._lower[i]):.6g}, {float(self._upper[i]):.6g}] (limits + margin)" + _more(outside),
                )
            )
        if self._q_prev is not None and self._now_prev is not None and now >= self._now_prev:
            # Capped: a clock at 1e308 must not overflow to inf (a day explains any jump anyway).
            elapsed_s = min(now - self._now_prev, _DAY_S) + self._period_s
            allowed = self._vmax * elapsed_s + self._slack_rad
            jump = np.abs(q - self._q_prev)
            bad = jump > allowed
            if bad.any():
                i = int(np.argmax(jump - allowed))
                faults.append(
                    (
                        "plausibility_jump",
                        f"{self._names[i]} moved {float(jump[i]):.6g} rad since the previous reading "
                        f"{now - self._now_prev:.4g} s ago (at most {float(allowed[i]):.6g} rad explainable)"
                        + _more(bad),
                    )
                )
        if v is not None:
            fast = np.abs(v) > self._vmax
            if fast.any():
                i = int(np.argmax(np.abs(v) - self._vmax))
                faults.append(
                    (
                        "plausibility_velocity",
                        f"{self._names[i]} reads {float(v[i]):.6g} rad/s, beyond {float(self._vmax[i]):.6g} rad/s"
                        + _more(fast),
                    )
                )
        if stamp is not None and self._stamp_prev is not None and self._now_prev is not None:
            d_stamp = stamp - self._stamp_prev
            d_clock = now - self._now_prev
            if d_stamp < 0.0:
                faults.append(("plausibility_stamp", f"stamp went back {-d_stamp:.6g} s (to {stamp:.6f} s)"))
            elif d_stamp > max(d_clock, 0.0) + self._stamp_jump_s:
                faults.append(
                    (
                        "plausibility_stamp",
                        f"stamp jumped {d_stamp:.6g} s ahead while the clock advanced {d_clock:.4g} s "
                        f"(at most {self._stamp_jump_s:g} s more allowed)",
                    )
                )
        return faults

    def _plausible(self, q: F64, v: F64 | None, stamp: float | None, now: float) -> bool:
        """One combined test of every rule (False: at least one may have failed; `_faults` says which).

        Written as a loop over Python floats: per tick this is cheaper than a dozen numpy calls on a handful of
        joints. A NaN fails every comparison, so it is never judged plausible here.
        """
        bounds = self._bounds
        qs = q.tolist()
        for x, (lo, hi, _) in zip(qs, bounds, strict=True):
            if not lo <= x <= hi:
                return False
        if v is not None:
            for w, (_, _, vmax) in zip(v.tolist(), bounds, strict=True):
                if not -vmax <= w <= vmax:
                    return False
        q_prev, now_prev = self._q_prev, self._now_prev
        if q_prev is not None and now_prev is not None and now >= now_prev:
            elapsed_s = min(now - now_prev, _DAY_S) + self._period_s
            slack = self._slack_rad
            for x, p, (_, _, vmax) in zip(qs, q_prev.tolist(), bounds, strict=True):
                if not abs(x - p) <= vmax * elapsed_s + slack:
                    return False
        if stamp is None or self._stamp_prev is None or now_prev is None:
            return True
        d_stamp = stamp - self._stamp_prev
        return 0.0 <= d_stamp <= max(now - now_prev, 0.0) + self._stamp_jump_s

    def commit(self) -> None:
        """Keep the reading, stamp and recovery count of the step that was sent."""
        self._q_prev, self._stamp_prev, self._now_prev, self._wait = self._pending

    def reset(self) -> None:
        """Re-arm: a new episode may start anywhere (a simulator resets its pose), so the previous reading and
        stamp are forgotten; a fault in progress is kept (it still needs its plausible readings)."""
        self._q_prev = self._stamp_prev = self._now_prev = None
        self._pending = (None, None, None, self._wait)
        self._suspect = self._wait > 0


def _same(q: F64, prev: F64 | None) -> bool:
    return prev is not None and not np.count_nonzero(q != prev)


def _more(mask: np.ndarray) -> str:
    n = int(np.count_nonzero(mask))
    return f" ({n} joints)" if n > 1 else ""
