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

from robot_rl.core.robot import RobotInterface, normalized_to_physical, physical_to_normalized

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
        out: FloatArray = normalized_to_physical(
            np.asarray(action_norm, dtype=np.float32), self.low_array, self.high_array
        ).astype(np.float32, copy=False)
        return out

    def to_normalized(self, action: npt.ArrayLike) -> FloatArray:
        """Map a physical action to [-1, 1] (affine, no clipping)."""
        out: FloatArray = physical_to_normalized(
            np.asarray(action, dtype=np.float32), self.low_array, self.high_array
        ).astype(np.float32, copy=False)
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


SPEC_FORMAT = 2
"""Version of the `PolicySpec` JSON layout. 1: untyped `extra` dict, and policies of robot_rl/* envs emitted
normalized actions; 2: typed `robot` interface, every policy emits physical actions."""


class SpecFormatError(ValueError):
    """A stored spec cannot be used as it is (written by another format version); the message says what to do."""


@dataclass(frozen=True)
class PolicySpec:
    """Everything a runtime must know to feed a policy and use its output.

    The policy takes raw observations and returns **physical** actions within `action.low/high`; for a robot env
    `action` equals `robot.command`'s physical range (`robot_rl.core.robot` states the one action convention).
    """

    observation: ObservationSpec
    """Observation entries and flattening order."""
    action: ActionSpec
    """Physical action bounds (and joint names where known)."""
    control_hz: float
    """Rate at which the policy is queried, in Hz."""
    chunk_size: int = 1
    """Actions returned per query, H (1 for a plain policy, >1 for action-chunked policies)."""
    execution_horizon: int = 0
    """Actions of each chunk executed before re-planning, H_a (0 = the whole chunk)."""
    obs_history: int = 1
    """Observations the policy conditions on, T_o (1 = the current one only)."""
    action_latency_s: float = 0.0
    """Delay between observation and executed action the policy was trained to expect, s."""
    env_id: str = ""
    """Gymnasium id the policy was trained on ("" when unknown)."""
    robot: RobotInterface | None = None
    """What observations and actions mean on a robot (None for plain Gymnasium envs)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Free-form, JSON-serializable provenance (run dir, training summary, ...): informational only; no code reads
    deployment facts from it."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.control_hz) and self.control_hz > 0):
            raise ValueError(f"PolicySpec: control_hz must be positive and finite, got {self.control_hz}")
        if self.chunk_size < 1:
            raise ValueError(f"PolicySpec: chunk_size must be >= 1, got {self.chunk_size}")
        if not 0 <= self.execution_horizon <= self.chunk_size:
            raise ValueError(
                f"PolicySpec: execution_horizon must be in [0, chunk_size={self.chunk_size}], "
                f"got {self.execution_horizon}"
            )
        if self.obs_history < 1:
            raise ValueError(f"PolicySpec: obs_history must be >= 1, got {self.obs_history}")
        if not (math.isfinite(self.action_latency_s) and self.action_latency_s >= 0):
            raise ValueError(f"PolicySpec: action_latency_s must be finite and >= 0, got {self.action_latency_s}")
        if self.robot is not None:
            if self.robot.observation_dim != self.observation.dim:
                raise ValueError(
                    f"PolicySpec: the robot's observation layout has {self.robot.observation_dim} elements, "
                    f"the observation spec {self.observation.dim}"
                )
            cmd = self.robot.command
            if cmd.dim != self.action.dim or not (
                np.allclose(cmd.physical_low, self.action.low, rtol=1e-6, atol=1e-6)
                and np.allclose(cmd.physical_high, self.action.high, rtol=1e-6, atol=1e-6)
            ):
                raise ValueError(
                    f"PolicySpec: action bounds {self.action.low}..{self.action.high} are not the physical range "
                    f"of the robot's {cmd.type} command {cmd.physical_low}..{cmd.physical_high}: policies emit "
                    "physical actions"
                )

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_hz

    @property
    def executed_per_chunk(self) -> int:
        """H_a: actions executed from each chunk before the policy is queried again."""
        return self.execution_horizon or self.chunk_size

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SPEC_FORMAT,
            "observation": self.observation.to_json(),
            "action": self.action.to_json(),
            "control_hz": self.control_hz,
            "chunk_size": self.chunk_size,
            "execution_horizon": self.execution_horizon,
            "obs_history": self.obs_history,
            "action_latency_s": self.action_latency_s,
            "env_id": self.env_id,
            "robot": None if self.robot is None else self.robot.to_json(),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicySpec:
        """Read a spec; a format-1 spec is upgraded (`is_v1_robot_spec` tells whether its policy emitted
        normalized actions, which a format-1 *bundle* cannot be fixed for: see `export.manifest`)."""
        fmt = int(data.get("format", 1))
        if fmt > SPEC_FORMAT:
            raise SpecFormatError(
                f"policy spec format {fmt} is newer than this robot_rl understands ({SPEC_FORMAT}): upgrade robot_rl"
            )
        if fmt == 1:
            return cls._from_v1(data)
        robot = data.get("robot")
        return cls(
            observation=ObservationSpec.from_json(data["observation"]),
            action=ActionSpec.from_json(data["action"]),
            control_hz=float(data["control_hz"]),
            chunk_size=int(data.get("chunk_size", 1)),
            execution_horizon=int(data.get("execution_horizon", 0)),
            obs_history=int(data.get("obs_history", 1)),
            action_latency_s=float(data.get("action_latency_s", 0.0)),
            env_id=str(data.get("env_id", "")),
            robot=None if robot is None else RobotInterface.from_json(robot),
            metadata=dict(data.get("metadata", {})),
        )

    @classmethod
    def _from_v1(cls, data: Mapping[str, Any]) -> PolicySpec:
        extra = dict(data.get("extra", {}))
        env_id = str(extra.pop("env_id", ""))
        robot = None
        action = ActionSpec.from_json(data["action"])
        if is_v1_robot_spec(data):
            robot = RobotInterface.from_v1_extra(extra)
            for key in ("robot", "task", "backend", "joint_names", "observation_layout", "action_interface"):
                extra.pop(key, None)
            extra.pop("joint_limits", None)
            # Format 1 trained these policies on normalized actions; format 2 states the physical range.
            action = ActionSpec(
                robot.command.physical_low, robot.command.physical_high, robot.command.joints, robot.command.units
            )
        return cls(
            observation=ObservationSpec.from_json(data["observation"]),
            action=action,
            control_hz=float(data["control_hz"]),
            chunk_size=int(data.get("chunk_size", 1)),
            env_id=env_id,
            robot=robot,
            metadata=extra,
        )


def is_v1_robot_spec(data: Mapping[str, Any]) -> bool:
    """True for a format-1 spec of a robot_rl/* env: its policy emitted normalized actions in [-1, 1]."""
    extra = data.get("extra")
    return int(data.get("format", 1)) == 1 and isinstance(extra, Mapping) and "action_interface" in extra
