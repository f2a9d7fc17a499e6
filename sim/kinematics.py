"""Small kinematics helpers for scripted experts: quaternion maths and damped least-squares IK steps."""

from __future__ import annotations

import numpy as np


def quat_to_matrix(q_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = np.asarray(q_wxyz, dtype=np.float64) / np.linalg.norm(q_wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotation_error(r_target: np.ndarray, r_current: np.ndarray) -> np.ndarray:
    """Axis-angle vector (world frame, rad) that rotates `r_current` onto `r_target`."""
    r = r_target @ r_current.T
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos))
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if angle < 1e-6:
        return 0.5 * axis
    return angle * axis / (2.0 * np.sin(angle)) if np.sin(angle) > 1e-6 else angle * np.array([1.0, 0.0, 0.0])


def dls_step(jac: np.ndarray, err: np.ndarray, damping: float = 0.05) -> np.ndarray:
    """Joint displacement that reduces a task-space error: Jᵀ (J Jᵀ + λ² I)⁻¹ e (robust near singularities)."""
    jjt = jac @ jac.T
    return np.asarray(jac.T @ np.linalg.solve(jjt + damping**2 * np.eye(jjt.shape[0]), err))
