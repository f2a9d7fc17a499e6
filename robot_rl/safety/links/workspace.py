"""The workspace box (`workspace`): hold when the end effector would leave an axis-aligned box (base frame, m)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.inputs import F64
from robot_rl.safety.link import LinkBase, LinkKind, LinkOutput, Step

ForwardKinematics = Callable[[F64], F64]
"""Joint positions [n] (config order, rad) → end-effector position [3] (m)."""

Box = tuple[float, float, float, float, float, float]
"""(x_lo, x_hi, y_lo, y_hi, z_lo, z_hi), m, as Python floats: three scalar tests beat numpy calls."""


def forward_kinematics_of(kinematics: object) -> ForwardKinematics | None:
    """The position function of `kinematics`: its `position` method (a `UrdfChain`), or itself if callable."""
    if kinematics is None:
        return None
    position = getattr(kinematics, "position", None)
    if callable(position):
        return position  # type: ignore[no-any-return]
    if callable(kinematics):
        return kinematics
    raise ValueError(f"kinematics must be a UrdfChain or a callable q -> end-effector position, got {kinematics!r}")


class WorkspaceLink(LinkBase):
    """Position interface: FK(target) in the box; velocity interface: FK(q + v·T) in the box; else hold."""

    name = "workspace"
    kind: LinkKind = "check"

    def __init__(self, config: SafetyConfig, kinematics: object = None) -> None:
        """Args:
        config: the limits; without a box the link passes everything.
        kinematics: a `UrdfChain` or a callable FK; required exactly when the config has a box.

        Raises:
            ValueError: forward kinematics missing for a workspace box.
        """
        super().__init__()
        self._fk = forward_kinematics_of(kinematics)
        lo, hi = config.workspace_lower_m, config.workspace_upper_m
        self.box: Box | None = None
        """The box, or None (no box configured: the link is inert)."""
        if lo is not None and hi is not None:
            if self._fk is None:
                raise ValueError(f"the workspace box {lo}..{hi} m needs forward_kinematics")
            self.box = (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        self._position_iface = config.command_interface == "position"
        self._period_s = config.control_period_s

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Pass the action, or hold with where the end effector would be."""
        if self.box is None or self._fk is None:
            return action, ()
        if self._position_iface:
            q = action
        else:
            q_meas = step.joint_pos_rad
            if q_meas is None:
                return self.hold("no valid joint measurement to predict the end effector from")
            q = q_meas + action * self._period_s
        why = workspace_violation(self._fk, q, self.box)
        return (action, ()) if not why else (None, (("workspace", why),))


def workspace_violation(fk: ForwardKinematics, q: F64, box: Box) -> str:
    """Why FK(q) is outside the workspace box ("" if inside). Never raises: a failing FK cannot prove safety."""
    try:
        p = np.asarray(fk(q.copy()), dtype=np.float64)  # a copy: FK must not be able to change the command
    except Exception as exc:  # user code on the robot path: any failure means "cannot prove safe" → hold
        return f"workspace: forward kinematics failed ({type(exc).__name__}: {exc})"
    if p.shape != (3,):
        return f"workspace: forward kinematics returned shape {p.shape}, expected (3,) (m)"
    x, y, z = p.tolist()
    # NaN fails every comparison, so it lands in the reporting branch below.
    if box[0] <= x <= box[1] and box[2] <= y <= box[3] and box[4] <= z <= box[5]:
        return ""
    if not np.isfinite(p).all():
        return f"workspace: forward kinematics returned {p.tolist()}, expected finite numbers (m)"
    axes = [
        f"{axis} {v:.4g} {'<' if v < lo else '>'} {lo if v < lo else hi:.4g}"
        for axis, v, lo, hi in (("x", x, box[0], box[1]), ("y", y, box[2], box[3]), ("z", z, box[4], box[5]))
        if not lo <= v <= hi
    ]
    return f"workspace: end effector ({x:.4g}, {y:.4g}, {z:.4g}) m outside the box ({', '.join(axes)})"
