"""Action interfaces that mirror ros2_control command interfaces, on normalized actions in [-1, 1].

The sim env takes normalized actions in [-1, 1] (the learner's convention); each interface states its physical
mapping (`physical_low`, `physical_high`, `units`), recorded as the typed `robot_rl.core.robot.CommandInterface`.
Deployable policies emit the physical command; `robot_rl.train.envs.make_env` presents the suite's envs with that
physical action space, so one affine map (`robot_rl.core.robot`) serves the sim, the exporter and the robot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.core.robot import normalized_to_physical, physical_to_normalized
from sim.errors import unknown_name


@dataclass(frozen=True)
class ActionInterface:
    """How a normalized action becomes a joint command."""

    name: str
    """"joint_position", "joint_velocity" or "joint_effort" (the ros2_control command interface)."""
    physical_low: np.ndarray
    """Physical value of action −1 per actuated joint."""
    physical_high: np.ndarray
    """Physical value of action +1 per actuated joint."""
    units: str
    """Units of the physical command."""
    servo: bool
    """True when the backend's position servo executes the command (position, velocity)."""

    def to_physical(self, action: np.ndarray) -> np.ndarray:
        """Normalized action → physical command (position rad/m, velocity rad/s or m/s, effort N·m or N)."""
        return normalized_to_physical(action, self.physical_low, self.physical_high)

    def to_normalized(self, command: np.ndarray) -> np.ndarray:
        """Physical command → normalized action (clipped to [-1, 1])."""
        return physical_to_normalized(command, self.physical_low, self.physical_high, clip=True)


INTERFACES = ("joint_position", "joint_velocity", "joint_effort")


def make_interface(name: str, limits: dict[str, np.ndarray], prismatic: np.ndarray) -> ActionInterface:
    """The interface `name` for actuated joints with these URDF limits (`prismatic` marks linear joints)."""
    lin = bool(np.all(prismatic))
    if name == "joint_position":
        if not (np.all(np.isfinite(limits["lower"])) and np.all(np.isfinite(limits["upper"]))):
            raise ValueError("joint_position needs finite position limits on every actuated joint")
        return ActionInterface(name, limits["lower"].copy(), limits["upper"].copy(), "m" if lin else "rad", True)
    if name == "joint_velocity":
        v = limits["velocity"]
        return ActionInterface(name, -v, v.copy(), "m/s" if lin else "rad/s", True)
    if name == "joint_effort":
        e = limits["effort"]
        return ActionInterface(name, -e, e.copy(), "N" if lin else "N*m", False)
    raise unknown_name("action interface", name, INTERFACES)
