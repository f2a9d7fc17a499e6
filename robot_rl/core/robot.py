"""The typed robot interface: what a policy's inputs and outputs mean on a robot (numpy only).

A `RobotInterface` travels with every policy trained on a robot env (in `PolicySpec.robot`, so in every run's
`config.json` and every bundle's manifest). It says which joints are measured and commanded, how the flat
observation is laid out (with units), which ros2_control command interface the action drives and its physical
range, and the joint limits the deployed safety chain defaults to. The simulator, the exporter, `eval --safety`,
the dataset builders and the ROS 2 node all read this one record; nothing parses loose dictionaries.

Action convention (one, everywhere): a **policy** emits **physical** commands (rad, rad/s, N*m, …) — that is what
`policy.onnx` returns and what the safety chain and the robot receive. Learners work on **normalized** actions in
[-1, 1]; `normalized_to_physical` / `physical_to_normalized` below are the only place the affine map is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

COMMAND_INTERFACES = ("joint_position", "joint_velocity", "joint_effort")
"""The command interfaces a robot_rl action can drive (ros2_control's forward command controllers)."""

ROS2_CONTROL_INTERFACE = {"joint_position": "position", "joint_velocity": "velocity", "joint_effort": "effort"}
"""Command interface → the ros2_control interface name (`position`, `velocity`, `effort`)."""


def normalized_to_physical(action_norm: npt.ArrayLike, low: npt.ArrayLike, high: npt.ArrayLike) -> npt.NDArray[Any]:
    """Affine map of a normalized action in [-1, 1] onto `[low, high]` (no clipping; -1 → low, +1 → high).

    Works on any leading shape (`[A]`, `[B, A]`, `[B, H, A]`); the dtype follows numpy's promotion of the inputs.
    """
    lo = np.asarray(low)
    hi = np.asarray(high)
    out: npt.NDArray[Any] = lo + (np.asarray(action_norm) + 1.0) * 0.5 * (hi - lo)
    return out


def physical_to_normalized(
    action: npt.ArrayLike, low: npt.ArrayLike, high: npt.ArrayLike, clip: bool = False
) -> npt.NDArray[Any]:
    """Inverse of `normalized_to_physical`; with `clip`, the result is clipped to [-1, 1]."""
    lo = np.asarray(low)
    hi = np.asarray(high)
    out: npt.NDArray[Any] = 2.0 * (np.asarray(action) - lo) / (hi - lo) - 1.0
    return np.clip(out, -1.0, 1.0) if clip else out


def _floats(name: str, value: Any) -> tuple[float, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a sequence of numbers, got {value!r}")
    out = tuple(float(v) for v in value)
    if not all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite, got {list(out)}")
    return out


def _names(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a sequence of names, got {value!r}")
    out = tuple(str(v) for v in value)
    if not all(out) or len(set(out)) != len(out):
        raise ValueError(f"{name} must be distinct, non-empty names, got {list(out)}")
    return out


@dataclass(frozen=True)
class ObservationEntry:
    """One named entry of the flat observation vector."""

    name: str
    """Entry name, e.g. "joint_pos", "target_rel"; `joint_pos`/`joint_vel` come from `/joint_states` on a robot."""
    shape: tuple[int, ...]
    """Shape of the entry; it occupies `prod(shape)` consecutive elements of the flat observation."""
    units: str = ""
    """Physical unit of the entry's values ("rad", "rad/s", "m", "" when unitless or unknown)."""

    @property
    def size(self) -> int:
        """Number of flat elements."""
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class JointLimits:
    """Limits of the commanded joints (command order), as the URDF states them; the safety chain's defaults."""

    position_lower: tuple[float, ...]
    """Lower position limit per joint, rad (m for prismatic joints)."""
    position_upper: tuple[float, ...]
    """Upper position limit per joint, rad (m for prismatic joints)."""
    velocity: tuple[float, ...]
    """Speed limit per joint, rad/s (m/s)."""
    effort: tuple[float, ...]
    """Effort limit per joint, N*m (N)."""
    acceleration: tuple[float, ...] = ()
    """Acceleration limit per joint, rad/s² (m/s²); empty when the description gives none (the safety chain then
    defaults to 10 × velocity per second)."""

    def __post_init__(self) -> None:
        n = len(self.position_lower)
        sizes = {len(self.position_upper), len(self.velocity), len(self.effort), n}
        if len(sizes) != 1 or (self.acceleration and len(self.acceleration) != n):
            raise ValueError(f"JointLimits: every limit needs one value per joint, got {self}")
        if any(lo > hi for lo, hi in zip(self.position_lower, self.position_upper, strict=True)):
            raise ValueError(f"JointLimits: lower {self.position_lower} above upper {self.position_upper}")

    def acceleration_or_default(self) -> tuple[float, ...]:
        """`acceleration`, or 10 × velocity per second (v_max reached in 0.1 s: conservative) when unknown."""
        return self.acceleration or tuple(10.0 * v for v in self.velocity)

    def to_json(self) -> dict[str, Any]:
        """JSON form (lists of floats)."""
        return {
            "position_lower": list(self.position_lower),
            "position_upper": list(self.position_upper),
            "velocity": list(self.velocity),
            "effort": list(self.effort),
            "acceleration": list(self.acceleration),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JointLimits:
        """Inverse of `to_json`."""
        return cls(
            position_lower=_floats("position_lower", data["position_lower"]),
            position_upper=_floats("position_upper", data["position_upper"]),
            velocity=_floats("velocity", data["velocity"]),
            effort=_floats("effort", data["effort"]),
            acceleration=_floats("acceleration", data.get("acceleration", ())),
        )


@dataclass(frozen=True)
class CommandInterface:
    """What the action drives: a ros2_control command interface on named joints, with its physical range."""

    type: str
    """"joint_position", "joint_velocity" or "joint_effort"."""
    units: str
    """Unit of the physical command ("rad", "rad/s", "N*m"; "m", "m/s", "N" for prismatic joints)."""
    joints: tuple[str, ...]
    """Commanded joints in action order."""
    physical_low: tuple[float, ...]
    """Physical command at normalized -1, per joint."""
    physical_high: tuple[float, ...]
    """Physical command at normalized +1, per joint."""

    def __post_init__(self) -> None:
        if self.type not in COMMAND_INTERFACES:
            raise ValueError(f"unknown command interface {self.type!r}; expected one of {list(COMMAND_INTERFACES)}")
        n = len(self.joints)
        if n == 0 or len(self.physical_low) != n or len(self.physical_high) != n:
            raise ValueError(
                f"CommandInterface: {n} joints but {len(self.physical_low)} low / {len(self.physical_high)} high"
            )
        if any(hi <= lo for lo, hi in zip(self.physical_low, self.physical_high, strict=True)):
            raise ValueError(
                f"CommandInterface: every high must exceed low, got {self.physical_low}, {self.physical_high}"
            )

    @property
    def ros2_control(self) -> str:
        """The ros2_control interface name: "position", "velocity" or "effort"."""
        return ROS2_CONTROL_INTERFACE[self.type]

    @property
    def dim(self) -> int:
        """Number of commanded joints."""
        return len(self.joints)

    def to_physical(self, action_norm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Normalized action(s) in [-1, 1] → physical command(s), float64 (no clipping)."""
        out: npt.NDArray[np.float64] = normalized_to_physical(
            np.asarray(action_norm, np.float64), self.physical_low, self.physical_high
        )
        return out

    def to_normalized(self, command: npt.ArrayLike, clip: bool = False) -> npt.NDArray[np.float64]:
        """Physical command(s) → normalized action(s) in [-1, 1] (clipped with `clip`), float64."""
        out: npt.NDArray[np.float64] = physical_to_normalized(
            np.asarray(command, np.float64), self.physical_low, self.physical_high, clip=clip
        )
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "type": self.type,
            "units": self.units,
            "joints": list(self.joints),
            "physical_low": list(self.physical_low),
            "physical_high": list(self.physical_high),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CommandInterface:
        """Inverse of `to_json`."""
        return cls(
            type=str(data["type"]),
            units=str(data.get("units", "")),
            joints=_names("command joints", data["joints"]),
            physical_low=_floats("physical_low", data["physical_low"]),
            physical_high=_floats("physical_high", data["physical_high"]),
        )


@dataclass(frozen=True)
class RobotInterface:
    """How a policy's flat observation and action map onto a robot's joints, sensors and controllers."""

    robot: str
    """Robot name (e.g. "panda", "iiwa"); a deployment for another robot is refused."""
    joint_names: tuple[str, ...]
    """Measured joints, in the order of the `joint_pos`/`joint_vel` observation entries."""
    observation: tuple[ObservationEntry, ...]
    """The flat observation's entries in order, with units."""
    command: CommandInterface
    """What the action drives."""
    limits: JointLimits | None = None
    """The commanded joints' limits from the robot description (None when unknown)."""
    task: str = ""
    """Task name in the simulation suite ("" on a robot without one)."""
    backend: str = ""
    """Physics engine the policy was trained in ("mujoco", "pybullet"; "" when not simulated)."""
    urdf: str = ""
    """Robot description the limits and kinematics come from (a path or `pybullet_data:<path>`; "" if unknown)."""
    ee_link: str = ""
    """End-effector link for Cartesian checks ("" if none)."""

    def __post_init__(self) -> None:
        _names("joint_names", self.joint_names)
        names = [e.name for e in self.observation]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"RobotInterface: observation entries must be distinct and non-empty, got {names}")
        if self.limits is not None and len(self.limits.velocity) != self.command.dim:
            raise ValueError(
                f"RobotInterface: limits for {len(self.limits.velocity)} joints, command has {self.command.dim}"
            )

    @property
    def observation_dim(self) -> int:
        """Length of the flat observation."""
        return sum(e.size for e in self.observation)

    def observation_slice(self, name: str) -> slice:
        """Where entry `name` sits in the flat observation.

        Raises:
            KeyError: no such entry (the message lists the entries).
        """
        start = 0
        for entry in self.observation:
            if entry.name == name:
                return slice(start, start + entry.size)
            start += entry.size
        raise KeyError(f"observation has no entry {name!r}; entries: {[e.name for e in self.observation]}")

    def commanded_joint_pos_index(self) -> npt.NDArray[np.intp]:
        """Flat-observation indices of the commanded joints' measured positions, in command order.

        Raises:
            KeyError: the observation has no `joint_pos` entry or it does not cover a commanded joint.
        """
        sl = self.observation_slice("joint_pos")
        missing = [j for j in self.command.joints if j not in self.joint_names]
        if missing:
            raise KeyError(f"commanded joints {missing} are not among the measured joints {list(self.joint_names)}")
        return np.asarray([sl.start + self.joint_names.index(j) for j in self.command.joints], np.intp)

    def to_json(self) -> dict[str, Any]:
        """JSON form (what manifests and run configs store)."""
        return {
            "robot": self.robot,
            "joint_names": list(self.joint_names),
            "observation": [{"name": e.name, "shape": list(e.shape), "units": e.units} for e in self.observation],
            "command": self.command.to_json(),
            "limits": None if self.limits is None else self.limits.to_json(),
            "task": self.task,
            "backend": self.backend,
            "urdf": self.urdf,
            "ee_link": self.ee_link,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RobotInterface:
        """Inverse of `to_json`."""
        limits = data.get("limits")
        return cls(
            robot=str(data["robot"]),
            joint_names=_names("joint_names", data["joint_names"]),
            observation=tuple(
                ObservationEntry(str(e["name"]), tuple(int(d) for d in e["shape"]), str(e.get("units", "")))
                for e in data["observation"]
            ),
            command=CommandInterface.from_json(data["command"]),
            limits=None if limits is None else JointLimits.from_json(limits),
            task=str(data.get("task", "")),
            backend=str(data.get("backend", "")),
            urdf=str(data.get("urdf", "")),
            ee_link=str(data.get("ee_link", "")),
        )

    @classmethod
    def from_v1_extra(cls, extra: Mapping[str, Any]) -> RobotInterface:
        """Upgrade the untyped `policy_spec.extra` of format-1 run configs and manifests."""
        iface = extra["action_interface"]
        lim = extra.get("joint_limits")
        return cls(
            robot=str(extra.get("robot", "")),
            joint_names=_names("joint_names", extra["joint_names"]),
            observation=tuple(
                ObservationEntry(str(k), tuple(int(d) for d in v)) for k, v in extra["observation_layout"].items()
            ),
            command=CommandInterface(
                type=str(iface["type"]),
                units=str(iface.get("units", "")),
                joints=_names("action joints", iface["joints"]),
                physical_low=_floats("physical_low", iface["physical_low"]),
                physical_high=_floats("physical_high", iface["physical_high"]),
            ),
            limits=None
            if not lim
            else JointLimits(
                position_lower=_floats("lower", lim["lower"]),
                position_upper=_floats("upper", lim["upper"]),
                velocity=_floats("velocity", lim["velocity"]),
                effort=_floats("effort", lim["effort"]),
            ),
            task=str(extra.get("task", "")),
            backend=str(extra.get("backend", "")),
        )
