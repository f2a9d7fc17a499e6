"""Joystick → joint command mapping with a hold-to-intervene dead-man button (ROS-free).

The operator drives while holding the dead-man button; releasing it hands control back to the policy. Axes map to
joint velocities; for a position-controlled robot the velocity is integrated from the measured position, so the
operator never commands a jump.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class JoyMapping:
    """How a `sensor_msgs/Joy` drives the commanded joints."""

    deadman_button: int
    """Index of the button that must be held to intervene."""
    axes: tuple[int, ...]
    """Joystick axis per commanded joint (-1 = that joint stays still)."""
    scale_rad_s: tuple[float, ...]
    """Joint velocity at full axis deflection, per commanded joint, rad/s."""
    command_interface: str = "velocity"
    """"velocity": publish velocities; "position": integrate them from the measured position."""
    deadzone: float = 0.05
    """Axis values below this magnitude count as zero (sticks never rest exactly at 0)."""

    def __post_init__(self) -> None:
        if len(self.axes) != len(self.scale_rad_s):
            raise ValueError(f"JoyMapping: {len(self.axes)} axes but {len(self.scale_rad_s)} scales")
        if self.deadman_button < 0:
            raise ValueError(f"JoyMapping: deadman_button must be >= 0, got {self.deadman_button}")
        if self.command_interface not in ("velocity", "position"):
            raise ValueError(
                f"JoyMapping: command_interface must be velocity or position, got {self.command_interface!r}"
            )
        if not all(math.isfinite(s) and s >= 0 for s in self.scale_rad_s):
            raise ValueError(f"JoyMapping: scales must be finite and >= 0, got {self.scale_rad_s}")


class JoyTeleop:
    """Stateful mapping: call `update` per Joy message; it returns (engaged, command or None)."""

    def __init__(self, mapping: JoyMapping) -> None:
        self.mapping = mapping
        self._target: npt.NDArray[np.float64] | None = None
        self._last_s: float | None = None

    def update(
        self,
        buttons: Sequence[int],
        axes: Sequence[float],
        now_s: float,
        measured_pos: npt.NDArray[np.float64] | None = None,
    ) -> tuple[bool, npt.NDArray[np.float64] | None]:
        """Map one Joy message; a malformed one (short arrays, NaN) disengages — never a wild command."""
        m = self.mapping
        engaged = len(buttons) > m.deadman_button and bool(buttons[m.deadman_button])
        if not engaged:
            self._target, self._last_s = None, None
            return False, None
        vel = np.zeros(len(m.axes))
        for j, (ax, scale) in enumerate(zip(m.axes, m.scale_rad_s, strict=True)):
            if ax < 0:
                continue
            if ax >= len(axes) or not math.isfinite(float(axes[ax])):
                self._target, self._last_s = None, None
                return False, None
            value = max(-1.0, min(1.0, float(axes[ax])))
            vel[j] = 0.0 if abs(value) < m.deadzone else value * scale
        if m.command_interface == "velocity":
            return True, vel
        if self._target is None:
            if measured_pos is None:
                return True, None  # engaged, but nothing safe to send yet: the policy node holds
            self._target = np.asarray(measured_pos, dtype=np.float64).copy()
        dt = 0.0 if self._last_s is None else max(0.0, min(now_s - self._last_s, 0.1))
        self._last_s = now_s
        self._target = self._target + vel * dt
        return True, self._target.copy()
