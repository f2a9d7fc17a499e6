"""Observation, action and policy specifications (numpy only).

A spec is what a deployed policy promises about its inputs and outputs: named observation
entries in a fixed flattening order, physical action bounds, the control rate and the chunk
size. It is saved in every export manifest so the robot side can check it before running.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def _prod(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape))


@dataclass(frozen=True)
class ObservationSpec:
    """Named observation entries and the order in which they are flattened into one vector."""

    keys: tuple[str, ...]
    """Entry names in flattening order, e.g. ("joint_pos", "joint_vel")."""
    shapes: tuple[tuple[int, ...], ...]
    """Shape of each entry (same order as `keys`)."""

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.shapes):
            raise ValueError(f"ObservationSpec: {len(self.keys)} keys but {len(self.shapes)} shapes")
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"ObservationSpec: duplicate keys in {self.keys}")
        if not self.keys:
            raise ValueError("ObservationSpec: needs at least one entry")
        for key, shape in zip(self.keys, self.shapes, strict=True):
            if any(int(d) <= 0 for d in shape):
                raise ValueError(f"ObservationSpec: entry {key!r} has non-positive shape {shape}")

    @property
    def dim(self) -> int:
        """Length of the flattened observation vector."""
        return sum(_prod(s) for s in self.shapes)

    @classmethod
    def flat(cls, dim: int, key: str = "observation") -> ObservationSpec:
        """A spec with one flat entry (what a Gymnasium Box observation space gives)."""
        return cls(keys=(key,), shapes=((int(dim),),))

    def flatten(self, obs: Mapping[str, Any] | npt.ArrayLike) -> FloatArray:
        """Flatten a mapping of named arrays (or an already flat array) to `[dim]` float32.

        Raises:
            ValueError: a key is missing or an entry has the wrong number of elements.
        """
        if isinstance(obs, Mapping):
            parts = []
            for key, shape in zip(self.keys, self.shapes, strict=True):
                if key not in obs:
                    raise ValueError(f"observation is missing key {key!r}; expected keys {self.keys}")
                arr = np.asarray(obs[key], dtype=np.float32).reshape(-1)
                if arr.size != _prod(shape):
                    raise ValueError(f"observation entry {key!r} has {arr.size} elements, expected shape {shape}")
                parts.append(arr)
            return np.concatenate(parts)
        flat = np.asarray(obs, dtype=np.float32).reshape(-1)
        if flat.size != self.dim:
            raise ValueError(f"observation has {flat.size} elements, expected {self.dim}")
        return flat

    def to_json(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "shapes": [list(s) for s in self.shapes]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObservationSpec:
        return cls(
            keys=tuple(str(k) for k in data["keys"]),
            shapes=tuple(tuple(int(d) for d in s) for s in data["shapes"]),
        )


@dataclass(frozen=True)
class ActionSpec:
    """Physical action bounds; policies act in these units, training works in [-1, 1]."""

    low: tuple[float, ...]
    """Lower bound of each action dimension in physical units."""
    high: tuple[float, ...]
    """Upper bound of each action dimension in physical units."""
    names: tuple[str, ...] = ()
    """Joint or actuator name per dimension where known (empty when unknown)."""
    units: str = ""
    """Physical unit of the action, e.g. "rad", "rad/s", "N*m" (empty when unknown)."""

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high) or not self.low:
            raise ValueError(f"ActionSpec: low {self.low} and high {self.high} must be non-empty, same length")
        lo, hi = np.asarray(self.low, np.float64), np.asarray(self.high, np.float64)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError(f"ActionSpec: bounds must be finite, got low={self.low} high={self.high}")
        if np.any(hi <= lo):
            raise ValueError(f"ActionSpec: every high must exceed low, got low={self.low} high={self.high}")
        if self.names and len(self.names) != len(self.low):
            raise ValueError(f"ActionSpec: {len(self.names)} names for {len(self.low)} dimensions")

    @property
    def dim(self) -> int:
        """Number of action dimensions."""
        return len(self.low)

    @property
    def low_array(self) -> FloatArray:
        return np.asarray(self.low, dtype=np.float32)

    @property
    def high_array(self) -> FloatArray:
        return np.asarray(self.high, dtype=np.float32)

    def to_physical(self, action_norm: npt.ArrayLike) -> FloatArray:
        """Map a normalized action in [-1, 1] to physical units (affine, no clipping)."""
        a = np.asarray(action_norm, dtype=np.float32)
        return self.low_array + (a + 1.0) * 0.5 * (self.high_array - self.low_array)

    def to_normalized(self, action: npt.ArrayLike) -> FloatArray:
        """Map a physical action to [-1, 1] (affine, no clipping)."""
        a = np.asarray(action, dtype=np.float32)
        out: FloatArray = (2.0 * (a - self.low_array) / (self.high_array - self.low_array) - 1.0).astype(np.float32)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"low": list(self.low), "high": list(self.high), "names": list(self.names), "units": self.units}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActionSpec:
        return cls(
            low=tuple(float(x) for x in data["low"]),
            high=tuple(float(x) for x in data["high"]),
            names=tuple(str(n) for n in data.get("names", ())),
            units=str(data.get("units", "")),
        )


@dataclass(frozen=True)
class PolicySpec:
    """Everything a runtime must know to feed a policy and use its output."""

    observation: ObservationSpec
    """Observation entries and flattening order."""
    action: ActionSpec
    """Physical action bounds (and joint names where known)."""
    control_hz: float
    """Rate at which the policy is queried, in Hz."""
    chunk_size: int = 1
    """Actions returned per query (1 for a plain policy, >1 for action-chunked policies)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Free-form, JSON-serializable metadata (env id, backend, ...)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.control_hz) and self.control_hz > 0):
            raise ValueError(f"PolicySpec: control_hz must be positive and finite, got {self.control_hz}")
        if self.chunk_size < 1:
            raise ValueError(f"PolicySpec: chunk_size must be >= 1, got {self.chunk_size}")

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_hz

    def to_json(self) -> dict[str, Any]:
        return {
            "observation": self.observation.to_json(),
            "action": self.action.to_json(),
            "control_hz": self.control_hz,
            "chunk_size": self.chunk_size,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicySpec:
        return cls(
            observation=ObservationSpec.from_json(data["observation"]),
            action=ActionSpec.from_json(data["action"]),
            control_hz=float(data["control_hz"]),
            chunk_size=int(data.get("chunk_size", 1)),
            extra=dict(data.get("extra", {})),
        )
