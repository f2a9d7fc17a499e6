"""What a physics backend must provide to a RobotTaskEnv, and the scene objects tasks ask for.

Both backends build the robot from the same processed URDF (see `sim.robots.urdf`) and expose the same
joint-level interface, so tasks, experts and the env never branch on the backend.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.randomization import EpisodeRandomization
from sim.robots.description import RobotDescription


@dataclass(frozen=True)
class BoxObject:
    """A free-floating box (e.g. the puck of a push task)."""

    name: str
    """Unique object name."""
    half_extents_m: tuple[float, float, float]
    """Half sizes along x, y, z."""
    mass_kg: float
    """Mass."""
    friction: float = 0.5
    """Sliding friction coefficient."""


@dataclass(frozen=True)
class Scene:
    """Everything in the world besides the robot."""

    floor: bool = True
    """A ground plane at z = 0."""
    objects: tuple[BoxObject, ...] = ()
    """Movable objects."""


class PhysicsBackend(abc.ABC):
    """One robot + scene in one physics engine. Joint arrays follow the description's order."""

    name: str
    """"mujoco" or "pybullet"."""
    physics_dt_s: float
    """Physics step."""

    def __init__(self, robot: RobotDescription, scene: Scene) -> None:
        self.robot = robot
        self.scene = scene

    # ----- model facts -----
    @abc.abstractmethod
    def joint_limits(self) -> dict[str, np.ndarray]:
        """`lower`, `upper`, `velocity`, `effort` of every robot joint as the *engine's model* holds them."""

    @abc.abstractmethod
    def counts(self) -> dict[str, int]:
        """Sizes the randomization needs: n_bodies, n_geoms, n_joints, n_actuated."""

    # ----- state -----
    @abc.abstractmethod
    def set_robot_state(self, q: np.ndarray, qd: np.ndarray) -> None:
        """Teleport every robot joint (kinematics are updated; servo targets are set to `q`)."""

    @abc.abstractmethod
    def robot_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities of every robot joint."""

    @abc.abstractmethod
    def set_object_pose(self, name: str, pos: np.ndarray, quat_wxyz: np.ndarray) -> None:
        """Teleport an object (at rest)."""

    @abc.abstractmethod
    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Object position (m) and orientation quaternion (w, x, y, z)."""

    @abc.abstractmethod
    def link_pose(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        """World position (m) and quaternion (w, x, y, z) of a robot link frame."""

    @abc.abstractmethod
    def jacobian(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        """Translational and rotational Jacobians (3 × n_actuated) of a link frame origin."""

    # ----- actuation -----
    @abc.abstractmethod
    def set_position_targets(self, q_target: np.ndarray) -> None:
        """Servo the actuated joints to these positions (held until changed)."""

    @abc.abstractmethod
    def set_efforts(self, effort: np.ndarray) -> None:
        """Apply these joint efforts (N·m or N) to the actuated joints (held until changed)."""

    @abc.abstractmethod
    def apply_force(self, target: str, force_n: np.ndarray) -> None:
        """Apply an external force at a link or object's origin for the next physics step only."""

    @abc.abstractmethod
    def step(self, n: int) -> int:
        """Advance `n` physics steps; return how many numerical warnings (bad qacc, NaN...) occurred."""

    # ----- episodes -----
    @abc.abstractmethod
    def apply_randomization(self, sample: EpisodeRandomization) -> None:
        """Scale masses, frictions, damping and servo gains relative to the nominal model."""

    @abc.abstractmethod
    def reset_world(self) -> None:
        """Back to the freshly built state (clears velocities, contacts and solver warm starts between episodes)."""

    @abc.abstractmethod
    def save_state(self) -> Any:
        """An opaque snapshot of the full physics state (restorable while this backend lives)."""

    @abc.abstractmethod
    def restore_state(self, snapshot: Any) -> None:
        """Return exactly to a snapshot taken with `save_state`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release engine resources."""
