"""Domain randomization and sim-to-real nuisances: the declaration, per-episode sampling, numpy-only helpers.

The MuJoCo and PyBullet backends share this file. It only declares what may vary, samples the values and
implements the backend-independent nuisances (action delay, control jitter, observation noise, impulses); each
backend writes the sampled scales into its own model. Every default is an exact no-op, so an env built with
`DomainRandomization()` behaves bit for bit like one built without randomization.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from robot_rl.core.config import config_from_json, config_to_json
from sim.errors import SimError

# Multiplicative ranges: (field name, smallest allowed lower bound is exclusive).
# A zero mass makes a free body singular in both physics engines, so mass is strictly positive; zero friction,
# damping or gain are legitimate (if harsh) experiments.
_SCALE_FIELDS: tuple[tuple[str, bool], ...] = (
    ("mass_scale", True),
    ("friction_scale", False),
    ("joint_damping_scale", False),
    ("actuator_gain_scale", False),
)


@dataclass(frozen=True)
class DomainRandomization:
    """What varies between episodes and within them; every default is off (an exact no-op)."""

    mass_scale: tuple[float, float] = (1.0, 1.0)
    """Inclusive range of a multiplicative scale on each body's mass (and inertia), drawn per body per episode."""
    friction_scale: tuple[float, float] = (1.0, 1.0)
    """Inclusive range of a multiplicative scale on each geom's (MuJoCo) or link's (PyBullet) sliding friction."""
    joint_damping_scale: tuple[float, float] = (1.0, 1.0)
    """Inclusive range of a multiplicative scale on each joint's damping, drawn per joint per episode."""
    actuator_gain_scale: tuple[float, float] = (1.0, 1.0)
    """Inclusive range of a multiplicative scale on each actuated joint's gain (motor strength), per episode."""
    action_latency_steps: tuple[int, int] = (0, 0)
    """Inclusive range of the action delay in control periods, drawn once per episode (see `ActionDelay`)."""
    obs_noise_std: float = 0.0
    """Std of zero-mean Gaussian white noise added to the observation every step, in observation units."""
    obs_bias_std: float = 0.0
    """Std of a zero-mean Gaussian bias drawn once per episode and added to every observation, in obs units."""
    control_jitter_frac: float = 0.0
    """Each control period lasts up to ±this fraction longer/shorter, realized as a per-step integer substep count
    around the nominal (never below 1); must be in [0, 1)."""
    impulse_prob_per_step: float = 0.0
    """Probability in [0, 1] that an external push starts on a given control step."""
    impulse_force_n: tuple[float, float] = (0.0, 0.0)
    """Inclusive range of the push's magnitude in N, applied to the end effector/object in a uniform 3D direction."""
    impulse_duration_steps: int = 1
    """How many physics substeps a push lasts once it starts (>= 1)."""

    def __post_init__(self) -> None:
        # Normalize (lists from hand-written configs, numpy scalars) so equality and JSON round trips are exact.
        for name, positive in _SCALE_FIELDS:
            lo, hi = _float_range(name, getattr(self, name))
            if lo < 0.0 or (positive and lo == 0.0):
                bound = "> 0" if positive else ">= 0"
                raise SimError(f"{name}: lower bound must be {bound}, got {(lo, hi)}")
            object.__setattr__(self, name, (lo, hi))
        lat = _int_range("action_latency_steps", self.action_latency_steps)
        if lat[0] < 0:
            raise SimError(f"action_latency_steps: must be >= 0, got {lat}")
        object.__setattr__(self, "action_latency_steps", lat)
        for name in ("obs_noise_std", "obs_bias_std", "control_jitter_frac", "impulse_prob_per_step"):
            value = _finite_float(name, getattr(self, name))
            if value < 0.0:
                raise SimError(f"{name}: must be >= 0, got {value}")
            object.__setattr__(self, name, value)
        if self.control_jitter_frac >= 1.0:
            # A full-period jitter would allow zero-length control periods.
            raise SimError(f"control_jitter_frac: must be < 1, got {self.control_jitter_frac}")
        if self.impulse_prob_per_step > 1.0:
            raise SimError(f"impulse_prob_per_step: must be in [0, 1], got {self.impulse_prob_per_step}")
        force = _float_range("impulse_force_n", self.impulse_force_n)
        if force[0] < 0.0:
            raise SimError(f"impulse_force_n: magnitudes must be >= 0, got {force}")
        object.__setattr__(self, "impulse_force_n", force)
        duration = _int("impulse_duration_steps", self.impulse_duration_steps)
        if duration < 1:
            raise SimError(f"impulse_duration_steps: must be >= 1, got {duration}")
        object.__setattr__(self, "impulse_duration_steps", duration)

    @property
    def impulses_enabled(self) -> bool:
        """True when pushes can happen and have a non-zero magnitude."""
        return self.impulse_prob_per_step > 0.0 and self.impulse_force_n[1] > 0.0

    @property
    def enabled(self) -> bool:
        """True when any feature has an effect (a field that changes nothing, like a lone duration, does not count)."""
        return (
            any(getattr(self, name) != (1.0, 1.0) for name, _ in _SCALE_FIELDS)
            or self.action_latency_steps[1] > 0
            or self.obs_noise_std > 0.0
            or self.obs_bias_std > 0.0
            or self.control_jitter_frac > 0.0
            or self.impulses_enabled
        )

    def to_json(self) -> dict[str, Any]:
        """This config as a plain JSON-ready dict (tuples become lists)."""
        return config_to_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DomainRandomization:
        """Rebuild from `to_json` output (lists become tuples); unknown keys and invalid values raise ValueError."""
        return config_from_json(cls, data)


@dataclass(frozen=True, eq=False)
class EpisodeRandomization:
    """The values drawn for one episode; arrays are float64 and read-only."""

    mass_scale: np.ndarray
    """[n_bodies] multiplicative mass scales."""
    friction_scale: np.ndarray
    """[n_geoms] multiplicative friction scales."""
    joint_damping_scale: np.ndarray
    """[n_joints] multiplicative joint damping scales."""
    actuator_gain_scale: np.ndarray
    """[n_actuated] multiplicative actuator gain scales."""
    action_latency_steps: int
    """Action delay in control periods for this episode (>= 0)."""
    obs_bias: np.ndarray
    """[obs_dim] constant bias added to every observation this episode, in observation units."""

    def __post_init__(self) -> None:
        for name in ("mass_scale", "friction_scale", "joint_damping_scale", "actuator_gain_scale", "obs_bias"):
            arr = np.array(getattr(self, name), dtype=np.float64)  # a copy: the caller's array stays theirs
            if arr.ndim != 1:
                raise SimError(f"{name}: expected a 1-D array, got shape {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise SimError(f"{name}: values must be finite, got {arr}")
            if name != "obs_bias" and np.any(arr < 0.0):
                raise SimError(f"{name}: scales must be >= 0, got {arr}")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        latency = _int("action_latency_steps", self.action_latency_steps)
        if latency < 0:
            raise SimError(f"action_latency_steps: must be >= 0, got {latency}")
        object.__setattr__(self, "action_latency_steps", latency)

    @classmethod
    def nominal(cls, n_bodies: int, n_geoms: int, n_joints: int, n_actuated: int, obs_dim: int) -> EpisodeRandomization:
        """The no-op episode: every scale 1, no latency, zero bias."""
        sizes = _sizes(n_bodies=n_bodies, n_geoms=n_geoms, n_joints=n_joints, n_actuated=n_actuated, obs_dim=obs_dim)
        return cls(
            mass_scale=np.ones(sizes["n_bodies"]),
            friction_scale=np.ones(sizes["n_geoms"]),
            joint_damping_scale=np.ones(sizes["n_joints"]),
            actuator_gain_scale=np.ones(sizes["n_actuated"]),
            action_latency_steps=0,
            obs_bias=np.zeros(sizes["obs_dim"]),
        )


def sample_episode(
    dr: DomainRandomization,
    rng: np.random.Generator,
    *,
    n_bodies: int,
    n_geoms: int,
    n_joints: int,
    n_actuated: int,
    obs_dim: int,
) -> EpisodeRandomization:
    """Draw one episode's values from `rng`.

    Draw order is fixed (mass, friction, damping, gain, latency, bias) and every feature draws its full share
    whether it is enabled or not, so `rng` advances by an amount that depends only on the sizes. Two
    consequences: same `dr` + same `rng` state + same sizes → identical result; and turning one feature on or
    off leaves the other features' draws unchanged (common random numbers across ablations). A disabled feature
    still returns its exact nominal value: lo + (hi - lo) * u is exactly lo when hi == lo.
    """
    sizes = _sizes(n_bodies=n_bodies, n_geoms=n_geoms, n_joints=n_joints, n_actuated=n_actuated, obs_dim=obs_dim)
    scales: dict[str, np.ndarray] = {}
    for (name, _), size_name in zip(_SCALE_FIELDS, ("n_bodies", "n_geoms", "n_joints", "n_actuated"), strict=True):
        scales[name] = _uniform(rng, getattr(dr, name), sizes[size_name])
    lat_lo, lat_hi = dr.action_latency_steps
    # A float draw mapped to the integers (rather than rng.integers) so the amount consumed never depends on
    # the range; min() guards the u -> 1 edge.
    latency = min(lat_lo + math.floor(float(rng.random()) * (lat_hi - lat_lo + 1)), lat_hi)
    z = rng.standard_normal(sizes["obs_dim"])
    # std * z would give -0.0 entries when std == 0; the no-op must be exact zeros.
    obs_bias = dr.obs_bias_std * z if dr.obs_bias_std > 0.0 else np.zeros(sizes["obs_dim"])
    return EpisodeRandomization(
        mass_scale=scales["mass_scale"],
        friction_scale=scales["friction_scale"],
        joint_damping_scale=scales["joint_damping_scale"],
        actuator_gain_scale=scales["actuator_gain_scale"],
        action_latency_steps=latency,
        obs_bias=obs_bias,
    )


class ActionDelay:
    """A FIFO of latency + 1 normalized actions: what is applied now was pushed `latency` control steps ago."""

    def __init__(self) -> None:
        self._buffer: deque[np.ndarray] = deque()
        self._latency_steps = -1  # not reset yet

    @property
    def latency_steps(self) -> int:
        """The delay in control periods set by the last `reset`."""
        self._check_reset()
        return self._latency_steps

    def reset(self, latency_steps: int, initial_action: np.ndarray) -> None:
        """Start an episode: until `latency_steps` pushes have passed, `push` returns `initial_action`."""
        latency = _int("latency_steps", latency_steps)
        if latency < 0:
            raise SimError(f"latency_steps: must be >= 0, got {latency}")
        initial = _finite_array("initial_action", initial_action)
        self._latency_steps = latency
        self._buffer = deque((initial.copy() for _ in range(latency + 1)), maxlen=latency + 1)

    def push(self, action: np.ndarray) -> np.ndarray:
        """Queue `action` and return the action to apply now (a copy; the queue is not exposed)."""
        self._check_reset()
        act = _finite_array("action", action)
        expected = self._buffer[0].shape
        if act.shape != expected:
            raise SimError(f"action: expected shape {expected}, got {act.shape}")
        self._buffer.append(act.copy())  # maxlen drops the action that was applied last step
        return self._buffer[0].copy()

    def _check_reset(self) -> None:
        if self._latency_steps < 0:
            raise RuntimeError("ActionDelay: call reset(latency_steps, initial_action) before use")


class StepNuisance:
    """Per-step draws (control jitter, observation noise, impulses) from a generator of its own.

    The generator is split into one independent stream per nuisance, so enabling one nuisance never changes the
    sequence another produces; a disabled nuisance returns its no-op without drawing.
    """

    def __init__(self, dr: DomainRandomization, rng: np.random.Generator) -> None:
        self._dr = dr
        self.noise_active = dr.obs_noise_std > 0.0
        """True when `obs_noise` draws (otherwise it returns exact zeros)."""
        self.active = dr.control_jitter_frac > 0.0 or self.noise_active or dr.impulses_enabled
        """True when any nuisance draws; otherwise `substeps` returns the nominal count, `obs_noise` zeros and
        `impulse` None, without drawing."""
        # The three streams are spawned on first use: spawning depends only on the generator's seed sequence (not
        # on its state), so the streams are the same whenever that happens, and a quiet env never pays for them.
        self._rng: np.random.Generator | None = rng
        self._streams: tuple[np.random.Generator, ...] = ()

    def _stream(self, i: int) -> np.random.Generator:
        if self._rng is not None:
            self._streams = tuple(self._rng.spawn(3))
            self._rng = None
        return self._streams[i]

    @property
    def _jitter_rng(self) -> np.random.Generator:
        return self._stream(0)

    @property
    def _noise_rng(self) -> np.random.Generator:
        return self._stream(1)

    @property
    def _impulse_rng(self) -> np.random.Generator:
        return self._stream(2)

    def substeps(self, nominal: int) -> int:
        """Physics substeps for this control period: round(nominal · (1 + U(-f, f))), within ±round(f · nominal), >= 1.

        f is `control_jitter_frac`; the bound rounds half up. With f · nominal < 0.5 there is no jitter at all: a
        period cannot be shorter or longer than a whole substep.
        """
        n = _int("nominal", nominal)
        if n < 1:
            raise SimError(f"nominal: substeps must be >= 1, got {n}")
        frac = self._dr.control_jitter_frac
        if frac == 0.0:
            return n
        max_dev = math.floor(frac * n + 0.5)  # the bound is the rounded fraction, half up
        dev = round(n * float(self._jitter_rng.uniform(-frac, frac)))
        return max(1, n + min(max(dev, -max_dev), max_dev))

    def obs_noise(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """Zero-mean Gaussian noise of `shape` with std `obs_noise_std` (exact zeros when it is off)."""
        raw: tuple[object, ...] = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        dims = tuple(_int("shape", d) for d in raw)
        if any(d < 0 for d in dims):
            raise SimError(f"shape: dimensions must be >= 0, got {shape!r}")
        std = self._dr.obs_noise_std
        if std == 0.0:
            return np.zeros(dims)
        return self._noise_rng.normal(0.0, std, size=dims)

    def impulse(self) -> np.ndarray | None:
        """Call once per control step: a [3] force in N to hold for `impulse_duration_steps` substeps, or None."""
        dr = self._dr
        if not dr.impulses_enabled or self._impulse_rng.random() >= dr.impulse_prob_per_step:
            return None
        lo, hi = dr.impulse_force_n
        magnitude = lo + (hi - lo) * float(self._impulse_rng.random())
        direction = self._impulse_rng.standard_normal(3)
        norm = float(np.linalg.norm(direction))
        while norm < 1e-12:  # a near-zero Gaussian vector has no direction; probability ~0, but never divide by 0
            direction = self._impulse_rng.standard_normal(3)
            norm = float(np.linalg.norm(direction))
        return magnitude * direction / norm


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], size: int) -> np.ndarray:
    lo, hi = bounds
    u = rng.random(size)
    # lo + (hi - lo) * u <= hi in exact arithmetic; clip the one-ulp rounding overshoot so ranges hold exactly.
    return np.minimum(lo + (hi - lo) * u, hi)


def _sizes(**sizes: int) -> dict[str, int]:
    out = {}
    for name, value in sizes.items():
        n = _int(name, value)
        if n < 0:
            raise SimError(f"{name}: must be >= 0, got {n}")
        out[name] = n
    return out


def _int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise SimError(f"{name}: expected an int, got {value!r}")
    return int(value)


def _finite_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise SimError(f"{name}: expected a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise SimError(f"{name}: must be finite, got {out}")
    return out


def _pair(name: str, value: object) -> tuple[object, object]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise SimError(f"{name}: expected a (low, high) pair, got {value!r}")
    return value[0], value[1]


def _float_range(name: str, value: object) -> tuple[float, float]:
    a, b = _pair(name, value)
    lo, hi = _finite_float(name, a), _finite_float(name, b)
    if lo > hi:
        raise SimError(f"{name}: low must be <= high, got {(lo, hi)}")
    return lo, hi


def _int_range(name: str, value: object) -> tuple[int, int]:
    a, b = _pair(name, value)
    lo, hi = _int(name, a), _int(name, b)
    if lo > hi:
        raise SimError(f"{name}: low must be <= high, got {(lo, hi)}")
    return lo, hi


def _finite_array(name: str, value: object) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SimError(f"{name}: expected a numeric array, got {value!r}") from exc
    if not np.all(np.isfinite(arr)):
        raise SimError(f"{name}: values must be finite, got {arr}")
    return arr
