"""The Lyapunov monitor (`lyapunov`): checks a bundle's Lyapunov critic along the real trajectory.

A policy trained with a Lyapunov critic (LAC) promises `L(s', π(s')) − L(s, a) + α₃·c(s, a) ≤ 0` on the states it
visits. On a real robot nobody checks that promise: the model may be wrong, the robot may be pushed, a sensor may
drift. This link is fed `L(s_t, π(s_t))` every tick the policy drives (by the control loop, from the bundle's
declared critic graph) and judges the decrease between consecutive ticks. After `consecutive_ticks` failures in a
row it acts as configured:

- `report`: count and report only (diagnostics WARN); the command passes;
- `hold`: hold from then on, until the next episode (`reset`);
- `fallback`: the control loop swaps in the configured fallback bundle; this link passes its commands;
- `estop`: the control loop latches the software e-stop (release and enable needed, as for any e-stop).

Each failed tick is counted under `lyapunov`, each trip under `lyapunov_trip` and each held tick under
`lyapunov_hold`, with the values in the reason,
so both reach /diagnostics like every other link's activations; the control loop adds the trip's reason to that
tick's recorded safety reasons, and a `hold` trip holds (and so is recorded) on every following tick. Failed ticks
are counted by `feed` itself, not returned from `filter`: a check that returns a reason holds, and a failed tick
under `report` must not.

Without the running cost on the robot (the bundle's critic needs states and actions only), the check is the
non-increase `L_t − L_{t−1} ≤ tolerance`, which the LAC condition implies for any c ≥ 0; a caller that knows the
cost passes it to `feed` and gets the full condition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.inputs import F64
from robot_rl.safety.link import LinkBase, LinkKind, LinkOutput, Step

OnViolation = Literal["report", "hold", "fallback", "estop"]
ON_VIOLATION: tuple[OnViolation, ...] = ("report", "hold", "fallback", "estop")
"""What the monitor may do once the decrease condition failed `consecutive_ticks` times in a row."""


@dataclass(frozen=True)
class LyapunovMonitorConfig:
    """The monitor's parameters (`safety.lyapunov.<field>` in the node's YAML)."""

    consecutive_ticks: int = 5
    """Failed ticks in a row that trip the monitor (>= 1): one noisy reading should not stop a robot."""
    tolerance: float = 0.0
    """Allowed increase of L between consecutive ticks (L's units, >= 0)."""
    alpha3: float = 0.0
    """Decrease rate α₃ of the condition when a cost is fed (>= 0); the bundle's trained α₃ is the natural value."""
    on_violation: OnViolation = "report"
    """What to do when tripped: report, hold, fallback or estop (see the module docstring)."""
    fallback_bundle: str = ""
    """Bundle directory the control loop switches to on `fallback` (verified at configure time like the main one)."""

    def __post_init__(self) -> None:
        problems = []
        n = self.consecutive_ticks
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            problems.append(f"lyapunov.consecutive_ticks must be an integer >= 1, got {n!r}")
        for name in ("tolerance", "alpha3"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                problems.append(f"lyapunov.{name} must be a finite number >= 0, got {v!r}")
        if self.on_violation not in ON_VIOLATION:
            problems.append(f"lyapunov.on_violation must be one of {list(ON_VIOLATION)}, got {self.on_violation!r}")
        if self.on_violation == "fallback" and not self.fallback_bundle:
            problems.append("lyapunov.on_violation 'fallback' needs lyapunov.fallback_bundle (a bundle directory)")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_params(cls, params: dict[str, Any] | Any) -> LyapunovMonitorConfig:
        """From `SafetyConfig.params_of("lyapunov")`; unknown keys are an error naming the known ones."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown lyapunov parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(params))


class LyapunovLink(LinkBase):
    """Judge the fed Lyapunov values; hold (latched until `reset`) when tripped with `on_violation: hold`."""

    name = "lyapunov"
    kind: LinkKind = "check"

    def __init__(self, config: SafetyConfig, kinematics: object = None) -> None:
        """Args:
        config: the chain's config; the monitor's own parameters are `config.params_of("lyapunov")`.
        kinematics: unused.

        Raises:
            ValueError: a bad monitor parameter (named).
        """
        super().__init__(keys=("lyapunov", "lyapunov_trip", "lyapunov_hold"))
        self.monitor = LyapunovMonitorConfig.from_params(config.params_of("lyapunov"))
        """The monitor's parameters."""
        self.tripped = False
        """The condition failed `consecutive_ticks` times in a row this episode (cleared by `reset`)."""
        self.trips = 0
        """Times the monitor tripped since construction."""
        self.last_value: float | None = None
        """The last fed L (None before the first one of an episode, or after a tick the policy did not drive)."""
        self.fed = 0
        """Values fed since construction (a monitor that is never fed checks nothing: diagnostics says so)."""
        self._streak = 0
        self.trip_reason = ""
        """The reason of the last trip ("" before the first)."""

    def feed(self, value: float | None, cost: float | None = None) -> bool:
        """Judge `L(s_t, π(s_t))` against the previous tick's; None breaks the chain of ticks (the policy did not
        drive, or the critic could not be evaluated). Returns True exactly when this value trips the monitor.

        A non-finite value counts as a failed tick: a critic that returns NaN cannot vouch for anything.
        """
        if value is None:
            self.last_value = None
            self._streak = 0  # "in a row" means along one unbroken stretch of the policy's own trajectory
            return False
        self.fed += 1
        prev, self.last_value = self.last_value, float(value)
        if not math.isfinite(self.last_value):
            failed, why = True, f"the critic returned {value!r}"
            self.last_value = None
        elif prev is None:
            return False
        else:
            rise = self.last_value - prev + self.monitor.alpha3 * (cost if cost is not None and cost > 0 else 0.0)
            failed = rise > self.monitor.tolerance
            why = f"L rose {prev:.4g} -> {self.last_value:.4g} (by {rise:.3g} > tolerance {self.monitor.tolerance:g})"
        if not failed:
            self._streak = 0
            return False
        self._streak += 1
        self.record("lyapunov", f"lyapunov: decrease condition failed ({self._streak} in a row): {why}")
        if self._streak == self.monitor.consecutive_ticks and not self.tripped:
            self.tripped = True
            self.trips += 1
            self.trip_reason = (
                f"lyapunov_trip: {self._streak} failed ticks in a row, action {self.monitor.on_violation!r} ({why})"
            )
            self.record("lyapunov_trip", self.trip_reason)
            return True
        return False

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Pass, or hold while tripped with `on_violation: hold`."""
        if self.tripped and self.monitor.on_violation == "hold":
            return self.hold(
                "tripped this episode: holding until the next episode (on_violation 'hold')", "lyapunov_hold"
            )
        return action, ()

    def reset(self) -> None:
        """New episode: the trajectory restarts, so does the check (counters are kept)."""
        self.tripped = False
        self.last_value = None
        self._streak = 0
