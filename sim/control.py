"""Action interfaces that mirror ros2_control command interfaces, on normalized actions in [-1, 1].

A policy always outputs normalized actions; each interface states its physical mapping (`physical_low`,
`physical_high`, `units`) so the export manifest — and later the ROS node — can turn them into the command a
forward position / velocity / effort controller expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

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

    @cached_property
    def _span(self) -> np.ndarray:
        """physical_high - physical_low, computed once (`to_physical` runs every control step)."""
        span: np.ndarray = self.physical_high - self.physical_low
        return span

    def to_physical(self, action: np.ndarray) -> np.ndarray:
        """Normalized action → physical command (position rad/m, velocity rad/s or m/s, effort N·m or N)."""
        return self.physical_low + (action + 1.0) * 0.5 * self._span

    def to_normalized(self, command: np.ndarray) -> np.ndarray:
        """Physical command → normalized action (clipped to [-1, 1])."""
        span = self.physical_high - self.physical_low
        return np.clip(2.0 * (command - self.physical_low) / span - 1.0, -1.0, 1.0)

    def to_json(self) -> dict[str, object]:
        """The mapping as recorded in a policy spec / export manifest."""
        return {
            "type": self.name,
            "physical_low": [float(x) for x in self.physical_low],
            "physical_high": [float(x) for x in self.physical_high],
            "units": self.units,
        }


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
