"""Input checks before any link reads the command: `shape` (n real numbers) and `non_finite` (no NaN/±Inf)."""

from __future__ import annotations

import numpy as np

from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.inputs import F64, all_finite
from robot_rl.safety.link import LinkBase, LinkKind, LinkOutput, Step


class ShapeLink(LinkBase):
    """Hold when the command was not n real numbers (the chain converted it; this link reports why not)."""

    name = "shape"
    kind: LinkKind = "check"

    def __init__(self, config: SafetyConfig | None = None, kinematics: object = None) -> None:
        """Args: unused (the registry's factory signature)."""
        super().__init__()

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Hold with the conversion problem."""
        why = step.command_problem
        return (action, ()) if not why else (None, (("shape", f"shape: {why}"),))


class NonFiniteLink(LinkBase):
    """Hold on NaN or ±Inf: never clipped (np.clip keeps NaN, ros2_control passes it), it means "no command"."""

    name = "non_finite"
    kind: LinkKind = "check"

    def __init__(self, config: SafetyConfig, kinematics: object = None) -> None:
        """Args:
        config: joint names for the reason.
        kinematics: unused.
        """
        super().__init__()
        self._names = config.joint_names

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Hold naming the joints that are not finite."""
        if all_finite(action):
            return action, ()
        bad = ", ".join(f"{self._names[i]}={action[i]}" for i in np.flatnonzero(~np.isfinite(action)))
        return None, (("non_finite", f"non_finite: {bad}"),)
