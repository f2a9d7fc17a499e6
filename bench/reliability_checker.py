"""An independent judge of every command the policy node publishes (bench/reliability.py's checker).

It shares no code with the safety chain: the joint limits come from the URDF through its own few lines of XML
parsing (not `SafetyConfig`, not the bundle's manifest, not the launch parameters), and the rules are written
from the contract in docs/safety.md, not from `robot_rl.safety`:

* `non_finite`: every value is a finite number, and there is one per commanded joint (`shape`);
* `position_limit` (position interface): every target is inside the URDF's [lower, upper];
  (velocity interface): the joint position the probe integrates from the commands never leaves [lower, upper]
  with the command still pushing outward;
* `velocity_limit`: |v| ≤ v_max, with v the commanded velocity (velocity interface) or the velocity a target
  implies over its tick, (q − q_prev)/dt (position interface);
* `acceleration_limit`: |v − v_prev| ≤ a_max·dt relative to the previous *published* command.
  A stop (an all-zero velocity command, or a target equal to the previous one) is exempt, as the contract says
  (stopping wins); stops from speed are counted separately as `abrupt_stops` so they stay visible.

Every rule is per tick, with the tick's own length dt = min(t − t_prev, T): `t` is the stamp the node records for
the step that published the command (the command message carries none; the caller cross-checks it against the
publish time), `T` the nominal control period. A tick longer than T counts as T (the conservative view: the same
step in less time). Why not the nominal T for every tick: under load ticks come unevenly (a late tick, then the
on-time one 1 ms later), and a target moving at a constant, legal velocity over ticks of T/2 and T has a
second difference of v·T/2 per tick — up to v_max/(2·a_max·T) = 1.5× a·T² on the Panda at 20 Hz — although
neither its velocity nor its acceleration changes. The ideal robot of the velocity interface moves with each command
from when it was sent until the next one, or until its command timeout (3 periods, the contract docs/deploy.md sets
for robots) holds it (the probe publishes its position as of the latest command); the position rule judges a
command over one period ahead.
URDFs carry no acceleration limits; the Panda's are Franka's published joint acceleration limits (below).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Franka Emika's published joint acceleration limits (rad/s²) for panda_joint1..7 (the URDF has none).
PANDA_ACCELERATION_RAD_S2 = (15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0)
RULES = ("shape", "non_finite", "position_limit", "velocity_limit", "acceleration_limit")
# Floating-point slack: the node clips to the limit exactly, so anything beyond this is a real excess.
_TOL = 1e-6
# A robot holds when no command arrived for this many control periods (docs/deploy.md's contract; the simulated
# robot's default command timeout).
ROBOT_COMMAND_TIMEOUT_PERIODS = 3.0
# Relative slack on rates: a tick's length comes from stamps rounded to whole nanoseconds (1 ns in a 0.5 ms tick
# is 2e-6 of its velocity).
_REL = 1e-4


@dataclass(frozen=True)
class JointLimits:
    """Limits of the commanded joints, read straight from a URDF."""

    names: tuple[str, ...]
    """Joint names in command order."""
    lower_rad: tuple[float, ...]
    """URDF `<limit lower>` per joint, rad."""
    upper_rad: tuple[float, ...]
    """URDF `<limit upper>` per joint, rad."""
    velocity_rad_s: tuple[float, ...]
    """URDF `<limit velocity>` per joint, rad/s."""
    acceleration_rad_s2: tuple[float, ...]
    """Acceleration limit per joint, rad/s² (not in URDFs: given by the caller)."""


def read_urdf_limits(urdf_path: str | Path, joints: list[str], acceleration_rad_s2: tuple[float, ...]) -> JointLimits:
    """Parse `<joint name><limit lower upper velocity>` for `joints` (in that order) from the URDF file.

    Raises:
        ValueError: a joint is missing or has no finite position/velocity limit (naming it).
    """
    root = ET.parse(str(urdf_path)).getroot()
    found: dict[str, tuple[float, float, float]] = {}
    for j in root.iter("joint"):
        lim = j.find("limit")
        if lim is not None:
            found[j.get("name", "")] = (
                float(lim.get("lower", "nan")),
                float(lim.get("upper", "nan")),
                float(lim.get("velocity", "nan")),
            )
    missing = [n for n in joints if n not in found or not all(math.isfinite(v) for v in found[n])]
    if missing:
        raise ValueError(f"{urdf_path}: no finite position/velocity <limit> for joints {missing}")
    if len(acceleration_rad_s2) != len(joints):
        raise ValueError(f"{len(acceleration_rad_s2)} acceleration limits for {len(joints)} joints")
    return JointLimits(
        names=tuple(joints),
        lower_rad=tuple(found[n][0] for n in joints),
        upper_rad=tuple(found[n][1] for n in joints),
        velocity_rad_s=tuple(found[n][2] for n in joints),
        acceleration_rad_s2=tuple(acceleration_rad_s2),
    )


@dataclass
class CommandChecker:
    """Checks a stream of published commands; counts violations by rule and by the case that was running."""

    limits: JointLimits
    """The URDF's limits."""
    interface: str
    """"velocity" (rad/s) or "position" (rad targets)."""
    period_s: float
    """Nominal control period T, s."""
    checked: int = 0
    """Commands checked."""
    unsafe: int = 0
    """Commands that broke at least one rule."""
    by_rule: Counter[str] = field(default_factory=Counter)
    """Violations per rule."""
    by_case: dict[str, Counter[str]] = field(default_factory=dict)
    """Violations per case, per rule."""
    examples: list[dict[str, object]] = field(default_factory=list)
    """The first few violations, with the command and the excess."""
    abrupt_stops: int = 0
    """Stops (exempt from the acceleration rule) from a speed above a_max·T."""
    _prev: np.ndarray | None = None
    _prev_v: np.ndarray | None = None
    _q: np.ndarray | None = None  # velocity interface: the joint position the commands imply, as of the last one
    _prev_cmd: np.ndarray | None = None  # velocity interface: the command in force since the last one
    _t: float | None = None  # when the previous command was published

    def start_position(self, q: np.ndarray) -> None:
        """Where the robot is (the probe's integrated state); the velocity interface's position rule uses it."""
        self._q = np.asarray(q, dtype=np.float64).copy()
        if self.interface == "position":  # the first target's step is judged from where the robot stands
            self._prev, self._prev_v = self._q.copy(), np.zeros_like(self._q)

    def check(self, values: list[float] | np.ndarray, case: str, t_s: float | None = None) -> list[str]:
        """Judge one published command, published at time `t_s` (monotonic s; None: one period after the last);
        returns the rules it broke (empty: safe)."""
        self.checked += 1
        # The tick's length: the time since the previous command, at most one period (stamps are whole ns: floor).
        # The velocity interface's ideal robot moves for the whole real interval (`elapsed`).
        dt, elapsed = self.period_s, self.period_s
        if t_s is not None and self._t is not None:
            elapsed = max(t_s - self._t, 1e-6)
            dt = min(elapsed, self.period_s)
        self._t = t_s
        lim = self.limits
        n = len(lim.names)
        cmd = np.asarray(values, dtype=np.float64)
        broken: list[str] = []
        detail: dict[str, object] = {}
        if cmd.shape != (n,):
            broken.append("shape")
        elif not np.all(np.isfinite(cmd)):
            broken.append("non_finite")
        else:
            lo, hi = np.asarray(lim.lower_rad), np.asarray(lim.upper_rad)
            vmax, amax = np.asarray(lim.velocity_rad_s), np.asarray(lim.acceleration_rad_s2)
            if self.interface == "position":
                if np.any(cmd < lo - _TOL) or np.any(cmd > hi + _TOL):
                    broken.append("position_limit")
                    detail["position_excess_rad"] = float(np.max(np.maximum(lo - cmd, cmd - hi)))
                v = None if self._prev is None else (cmd - self._prev) / dt
                stop = self._prev is not None and bool(np.array_equal(cmd, self._prev))
            else:
                v = cmd
                stop = not np.any(cmd)
                if self._q is not None:
                    if self._prev_cmd is not None:
                        # The previous command moved it until now, or until the robot's command timeout held it.
                        self._q = self._q + self._prev_cmd * min(elapsed, ROBOT_COMMAND_TIMEOUT_PERIODS * self.period_s)
                    # This one moves it until the next command, at most one period.
                    q_next = self._q + cmd * self.period_s
                    outward = ((q_next > hi + _TOL) & (cmd > 0)) | ((q_next < lo - _TOL) & (cmd < 0))
                    if np.any(outward):
                        broken.append("position_limit")
                        detail["position_excess_rad"] = float(np.max(np.maximum(lo - q_next, q_next - hi)))
                    self._prev_cmd = cmd
            if v is not None:
                if np.any(np.abs(v) > vmax * (1 + _REL) + _TOL):
                    broken.append("velocity_limit")
                    detail["velocity_ratio"] = float(np.max(np.abs(v) / vmax))
                if self._prev_v is not None:
                    dv = np.abs(v - self._prev_v)
                    if stop:
                        self.abrupt_stops += int(np.any(dv > amax * dt * (1 + _REL) + _TOL))
                    elif np.any(dv > amax * dt * (1 + _REL) + _TOL):
                        broken.append("acceleration_limit")
                        detail["acceleration_ratio"] = float(np.max(dv / (amax * dt)))
                        detail["tick_s"] = dt
            self._prev_v = v if v is not None else np.zeros(n)
            self._prev = cmd
        if broken:
            self.unsafe += 1
            case_counts = self.by_case.setdefault(case, Counter())
            for rule in broken:
                self.by_rule[rule] += 1
                case_counts[rule] += 1
            if len(self.examples) < 10:
                self.examples.append({"case": case, "rules": broken, "command": cmd.tolist(), **detail})
        return broken

    def robot_position(self) -> np.ndarray | None:
        """Where an ideal robot obeying the commands stands: the last target (position interface) or the
        integral of the commanded velocities (velocity interface); None before `start_position`."""
        q = self._prev if self.interface == "position" else self._q
        return None if q is None else np.array(q, dtype=np.float64)
