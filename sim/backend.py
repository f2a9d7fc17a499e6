"""What a physics backend must provide to a RobotTaskEnv, and the scene objects tasks ask for.

Both backends build the robot from the same processed URDF (see `sim.robots.urdf`) and expose the same
joint-level interface, so tasks, experts and the env never branch on the backend.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import SimError, unknown_name
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


def check_length_scales(scales: Mapping[str, float], links: Iterable[str]) -> dict[str, float]:
    """`scales` as a plain dict of floats, with factors of exactly 1 dropped (they change nothing).

    Raises:
        SimError: a link not in `links`, or a factor that is not a finite number > 0.
    """
    known = set(links)
    out: dict[str, float] = {}
    for name, value in scales.items():
        if name not in known:
            raise unknown_name("link", name, known)
        f = float(value)
        if not (math.isfinite(f) and f > 0.0):
            raise SimError(f"link length scale of {name!r} must be finite and > 0, got {value!r}")
        if f != 1.0:
            out[name] = f
    return out


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
    def apply_force(self, target: str, force_n: np.ndarray, physics_steps: int = 1) -> None:
        """Apply an external world-frame force at a link or object's centre of mass for the next `physics_steps`
        physics steps (>= 1), then remove it."""

    @abc.abstractmethod
    def step(self, n: int) -> int:
        """Advance `n` physics steps; return how many numerical warnings (bad qacc, NaN...) occurred."""

    # ----- episodes -----
    @abc.abstractmethod
    def apply_randomization(self, sample: EpisodeRandomization) -> None:
        """Scale masses, frictions, damping and servo gains relative to the nominal model."""

    @abc.abstractmethod
    def set_link_length_scale(self, scales: Mapping[str, float]) -> None:
        """Stretch links of the model from now on: link name -> factor f > 0 (an empty mapping: the nominal model).

        A stretched link keeps its mass; its centre of mass moves f times as far from the link frame (its joint) and
        its rotational inertia scales by f², as for a uniformly stretched rod. Randomization scales apply on top.

        Raises:
            SimError: an unknown link or a factor that is not finite and > 0.
        """

    @abc.abstractmethod
    def model_parameters(self) -> dict[str, np.ndarray]:
        """The model's physical parameters as the engine holds them now (to check what a perturbation changed).

        Keys: `body_mass_kg` [n_bodies], `body_com_m` [n_bodies, 3] (centre of mass in the body frame),
        `body_inertia_kg_m2` [n_bodies, 3] (principal inertia), `joint_damping` [n_joints] (N·s/m or N·m·s/rad),
        `friction` [n_geoms] (sliding friction coefficients). Body and geom order is the engine's own.
        """

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
