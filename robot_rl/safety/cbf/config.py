"""`CbfConfig`: the barrier-function filter's own parameters, parsed from `SafetyConfig.params_of("cbf")`.

A ROS 2 parameter file gives them nested (`safety: {cbf: {gamma: 0.1, spheres_m: [...]}}`) or flat
(`safety.cbf.gamma`); ROS 2 parameters hold only flat lists, so every obstacle list is flat (`spheres_m`: x, y, z,
radius per sphere). Every problem is reported at once, each naming its parameter as `cbf.<name>`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SOLVERS = ("daqp", "osqp", "proxsuite")
"""Backends with a direct interface (robot_rl/safety/cbf/qp.py); "qpsolvers:<name>" names any other."""
QPSOLVERS_PREFIX = "qpsolvers:"
"""`solver: "qpsolvers:<name>"` solves through the qpsolvers package with its solver `<name>`."""
CONTROL_POINTS = ("links+ee", "ee")
"""Which points the obstacle barriers guard: the child link of every moving joint and the end effector, or the
end effector only."""
DEFAULT_SOLVER = "daqp"
"""The lowest p99 solve time at 7 DoF in bench/cbf_solvers.py (docs/benchmarks/cbf_solvers.md)."""


@dataclass(frozen=True)
class CbfConfig:
    """The barrier-function QP filter: barriers, class-K rate, solver and its time budget (SI units)."""

    gamma: float = 0.1
    """Discrete-time class-K rate in (0, 1]: every barrier keeps h(x_{k+1}) ≥ (1 − γ)·h(x_k), so h may shrink by at
    most this fraction per step. Smaller is more cautious (an approach slows exponentially, at rate γ/T); with
    γ ≤ 1/3, h stays ≥ 0 to first order even when a velocity command stays in force for 3 periods (the command
    timeout the robot must have)."""
    solver: str = DEFAULT_SOLVER
    """QP backend: "daqp", "osqp", "proxsuite" or "qpsolvers:<name>" (imported when the chain is built)."""
    time_budget_s: float = 1e-3
    """Hard limit on one solve, s (> 0, below the control period): a slower solve is discarded and the chain holds."""
    margin_m: float = 0.01
    """Extra clearance kept from every obstacle and half-space, m (>= 0). The filter predicts one step to first
    order; the margin absorbs the second-order term (and model error) so the true distance stays positive."""
    spheres_m: tuple[float, ...] = ()
    """Sphere obstacles, flat: x, y, z, radius per sphere (m, base frame; radius > 0)."""
    capsules_m: tuple[float, ...] = ()
    """Capsule obstacles (a segment swept by a sphere), flat: x1, y1, z1, x2, y2, z2, radius per capsule (m)."""
    halfspaces: tuple[float, ...] = ()
    """Allowed half-spaces n·p ≤ d for every control point p, flat: nx, ny, nz, d per half-space (n need not be
    unit: it is normalized, d with it; d in m for a unit n)."""
    box_lower_m: tuple[float, ...] | None = None
    """Lower corner (x, y, z) of a box every control point must stay in, m (6 half-spaces); with `box_upper_m`."""
    box_upper_m: tuple[float, ...] | None = None
    """Upper corner (x, y, z) of that box, m."""
    control_points: str = "links+ee"
    """Which points the obstacle barriers guard: "links+ee" (each moving joint's child link origin and the end
    effector) or "ee" (the end effector only)."""
    joint_limits: bool = True
    """Barrier rows for the joint position limits (the safety config's, shrunk by its position margin)."""
    point_radius_m: float = 0.0
    """Radius of the sphere around every control point that must stay clear of the obstacles, m (>= 0)."""
    lookahead_periods: float = 3.0
    """Velocity interface: the barrier rows hold for the command kept this many control periods (>= 1). A robot
    keeps its last command until its command timeout (3 periods, docs/deploy.md), and a servo that lags its
    commands keeps moving after them: judged over one period, a full-speed approach ran into the reach-around
    pillar in simulation; over three it did not."""

    @property
    def n_spheres(self) -> int:
        """Number of sphere obstacles."""
        return len(self.spheres_m) // 4

    @property
    def n_capsules(self) -> int:
        """Number of capsule obstacles."""
        return len(self.capsules_m) // 7

    @property
    def n_halfspaces(self) -> int:
        """Number of half-spaces, the box's six included."""
        return len(self.halfspaces) // 4 + (6 if self.box_lower_m is not None else 0)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], control_period_s: float | None = None) -> CbfConfig:
        """Parse a link's parameter section (`SafetyConfig.params_of("cbf")`); absent keys keep their defaults.

        Args:
            params: parameter name → ROS 2 parameter value (number, string, bool or a flat list of them).
            control_period_s: when given, the time budget must be below it.

        Raises:
            ValueError: unknown names, wrong types or values; every problem, each naming `cbf.<parameter>`.
        """
        problems: list[str] = []
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            problems.append(f"unknown cbf parameters {[f'cbf.{k}' for k in unknown]}; known: {sorted(known)}")
        kw: dict[str, Any] = {}
        for name in ("gamma", "time_budget_s", "margin_m", "point_radius_m", "lookahead_periods"):
            if name in params:
                kw[name] = _real(name, params[name], problems)
        for name in ("spheres_m", "capsules_m", "halfspaces", "box_lower_m", "box_upper_m"):
            if name in params:
                kw[name] = _reals(name, params[name], problems)
        for name in ("solver", "control_points"):
            if name in params:
                value = params[name]
                if isinstance(value, str):
                    kw[name] = value
                else:
                    problems.append(f"cbf.{name} must be a string, got {value!r}")
        if "joint_limits" in params:
            value = params["joint_limits"]
            if isinstance(value, bool):
                kw["joint_limits"] = value
            else:
                problems.append(f"cbf.joint_limits must be true or false, got {value!r}")
        if problems:
            raise ValueError("invalid cbf parameters: " + "; ".join(problems))
        config = cls(**kw)
        config.validate(problems, control_period_s)
        if problems:
            raise ValueError("invalid cbf parameters: " + "; ".join(problems))
        return config

    def validate(self, problems: list[str], control_period_s: float | None = None) -> None:
        """Append one message per invalid value (naming `cbf.<parameter>`) to `problems`."""
        if not (math.isfinite(self.gamma) and 0.0 < self.gamma <= 1.0):
            problems.append(f"cbf.gamma must be in (0, 1], got {self.gamma}")
        if not (math.isfinite(self.time_budget_s) and self.time_budget_s > 0.0):
            problems.append(f"cbf.time_budget_s must be finite and > 0, got {self.time_budget_s}")
        elif control_period_s is not None and self.time_budget_s >= control_period_s:
            problems.append(
                f"cbf.time_budget_s must be below the control period {control_period_s} s, got {self.time_budget_s}"
            )
        for name in ("margin_m", "point_radius_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                problems.append(f"cbf.{name} must be finite and >= 0, got {value}")
        if not (math.isfinite(self.lookahead_periods) and self.lookahead_periods >= 1.0):
            problems.append(f"cbf.lookahead_periods must be finite and >= 1, got {self.lookahead_periods}")
        if self.solver not in SOLVERS and not (
            self.solver.startswith(QPSOLVERS_PREFIX) and len(self.solver) > len(QPSOLVERS_PREFIX)
        ):
            problems.append(f"cbf.solver must be one of {list(SOLVERS)} or 'qpsolvers:<name>', got {self.solver!r}")
        if self.control_points not in CONTROL_POINTS:
            problems.append(f"cbf.control_points must be one of {list(CONTROL_POINTS)}, got {self.control_points!r}")
        self._validate_shapes(problems)

    def _validate_shapes(self, problems: list[str]) -> None:
        groups = (
            ("spheres_m", 4, "sphere (x, y, z, radius)"),
            ("capsules_m", 7, "capsule (x1, y1, z1, x2, y2, z2, radius)"),
            ("halfspaces", 4, "half-space (nx, ny, nz, d)"),
        )
        for name, width, what in groups:
            values = getattr(self, name)
            if len(values) % width:
                problems.append(f"cbf.{name} must have {width} values per {what}, got {len(values)}")
                continue
            if not all(map(math.isfinite, values)):
                problems.append(f"cbf.{name} must be finite, got {list(values)}")
                continue
            for i in range(len(values) // width):
                item = values[i * width : (i + 1) * width]
                if name == "halfspaces" and math.hypot(*item[:3]) < 1e-9:
                    problems.append(f"cbf.halfspaces: half-space {i} has a zero normal {list(item[:3])}")
                elif name != "halfspaces" and not item[-1] > 0.0:
                    problems.append(f"cbf.{name}: {what.split()[0]} {i} needs a radius > 0, got {item[-1]}")
        lo, hi = self.box_lower_m, self.box_upper_m
        if (lo is None) != (hi is None):
            problems.append(f"cbf.box_lower_m and cbf.box_upper_m must be given together, got {lo} and {hi}")
        elif lo is not None and hi is not None:
            if len(lo) != 3 or len(hi) != 3:
                problems.append(f"cbf.box_lower_m and cbf.box_upper_m need 3 values (x, y, z), got {lo} and {hi}")
            elif not all(map(math.isfinite, lo + hi)) or any(a >= b for a, b in zip(lo, hi, strict=True)):
                problems.append(f"cbf.box_lower_m must be finite and < cbf.box_upper_m on every axis, got {lo} / {hi}")


def _real(name: str, value: Any, problems: list[str]) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    problems.append(f"cbf.{name} must be a number, got {value!r}")
    return math.nan


def _reals(name: str, value: Any, problems: list[str]) -> tuple[float, ...]:
    if isinstance(value, tuple | list) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        return tuple(float(v) for v in value)
    problems.append(f"cbf.{name} must be a list of numbers, got {value!r}")
    return ()
