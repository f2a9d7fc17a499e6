"""Barrier rows: each function turns one kind of safe set h(q) ≥ 0 into linear rows A·u ≤ b in the joint velocity
u [n] (rad/s, or m/s for prismatic joints) applied for one step of T seconds.

The discrete-time condition (Agrawal & Sreenath 2017, "Discrete Control Barrier Functions for Safety-Critical
Control of Discrete Systems with Application to Bipedal Robot Navigation": the discrete-time exponential CBF,
Δh ≥ −γ·h) is h(q_{k+1}) ≥ (1 − γ)·h(q_k), γ ∈ (0, 1]. With q_{k+1} = q_k + u·T and h linearized at q_k,

    h + ∇h(q)·u·T ≥ (1 − γ)·h   ⇔   −∇h(q)·u ≤ γ·h / T,                                      (1)

the discrete form of the continuous CBF condition ḣ ≥ −α(h) (Ames et al. 2019, "Control Barrier Functions:
Theory and Applications", the definition of a CBF) with the linear class-K function α(h) = (γ/T)·h. For a
control point p(q) with position Jacobian J_p [3, n], ∇h(q) = ∇_p h · J_p. Every function returns (A [m, n],
b [m], h [m]); h is the barrier value of each row (m, or rad for joint limits), so a caller can tell which row
is violated and by how much. Pure numpy, no state.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from robot_rl.safety.links.joint_limits import braking_speed

F64 = npt.NDArray[np.float64]

_MIN_DISTANCE_M = 1e-12
"""Below this the direction away from an obstacle is undefined (the point is at its centre / on its axis)."""


def _rows(h: F64, grad_p: F64, jac: F64, gamma: float, dt_s: float) -> tuple[F64, F64, F64]:
    """Rows of eq. (1) from barrier values h [P, K] and their gradients in p, ∇_p h [P, K, 3], with J [P, 3, n]."""
    grad_q = np.matmul(grad_p, jac)  # ∇h(q) = ∇_p h · J_p, [P, K, n] (matmul: ~3x faster than einsum here)
    n = jac.shape[2]
    return -grad_q.reshape(-1, n), (gamma / dt_s) * h.reshape(-1), h.reshape(-1)


def joint_limit_rows(
    q_rad: F64 | tuple[F64, F64],
    lower_rad: F64,
    upper_rad: F64,
    gamma: float,
    dt_s: float,
    accel_rad_s2: F64 | None = None,
    brake_horizon_s: float = 0.0,
) -> tuple[F64, F64, F64]:
    """Joint position limits: h_up = upper − q and h_lo = q − lower, ∇h = ∓e_i, so eq. (1) gives
    u_i ≤ γ·(upper_i − q_i)/T and −u_i ≤ γ·(q_i − lower_i)/T (2n rows: the n upper limits, then the n lower).

    With `accel_rad_s2`, each bound inside the limits is instead the braking speed of the final clamp (the speed
    from which the joint still stops before the limit at a_max after `brake_horizon_s`; robot_rl/safety/links/
    joint_limits.py `braking_speed`), the clamp's own rule. The γ-rate alone asks for a deceleration of γ/T · v,
    which exceeds a_max at speed: the QP would turn infeasible with the acceleration box and the chain would stop
    abruptly; the braking speed is recursively feasible under the box (after a step at it, v − a_max·T is again
    allowed). Any looser bound (an earlier version took the larger of the two) lets through speeds the clamp then
    cuts, and a cut after this filter can undo what it did for the obstacles. A joint beyond a limit (h < 0)
    gets a row that requires moving back inside at rate γ.

    `q_rad` may be a pair (toward the upper limits, toward the lower ones): the position each limit is measured
    from, when the joint may be further along than measured (the final clamp's prediction of a lagging servo).
    """
    q_up, q_down = q_rad if isinstance(q_rad, tuple) else (q_rad, q_rad)
    n = q_up.shape[0]
    eye = np.eye(n)
    h = np.concatenate((upper_rad - q_up, q_down - lower_rad))
    b = (gamma / dt_s) * h
    if accel_rad_s2 is not None:
        a = np.concatenate((accel_rad_s2, accel_rad_s2))
        b = np.where(h > 0.0, braking_speed(h, a, brake_horizon_s), b)
    return np.concatenate((eye, -eye)), b, h


def sphere_rows(
    points_m: F64, jac: F64, centers_m: F64, radii_m: F64, clearance_m: float, gamma: float, dt_s: float
) -> tuple[F64, F64, F64]:
    """Sphere obstacles: h = ‖p − c‖ − r − clearance, ∇_p h = n̂ = (p − c)/‖p − c‖, in eq. (1) above. Rows
    are point-major: row p·S + s is point p against sphere s.

    Args:
        points_m: control points [P, 3]; jac: their Jacobians [P, 3, n].
        centers_m: sphere centres [S, 3]; radii_m: radii [S].
        clearance_m: added to every radius (control-point radius + margin).
    """
    diff = points_m[:, None, :] - centers_m[None, :, :]  # [P, S, 3]
    dist = np.sqrt((diff * diff).sum(axis=2))
    # At the centre there is no way out to first order: a zero gradient makes the row 0 ≤ γh/T < 0, infeasible.
    safe = np.maximum(dist, _MIN_DISTANCE_M)
    grad = np.where((dist > _MIN_DISTANCE_M)[..., None], diff / safe[..., None], 0.0)
    return _rows(dist - radii_m[None, :] - clearance_m, grad, jac, gamma, dt_s)


def capsule_rows(
    points_m: F64,
    jac: F64,
    starts_m: F64,
    ends_m: F64,
    radii_m: F64,
    clearance_m: float,
    gamma: float,
    dt_s: float,
) -> tuple[F64, F64, F64]:
    """Capsules (segment a→b swept by a sphere of radius r): h = ‖p − c(p)‖ − r − clearance with c(p) the closest
    point of the segment, c = a + clip((p − a)·(b − a)/‖b − a‖², 0, 1)·(b − a). The distance to a convex set is
    differentiable outside it with gradient (p − c)/‖p − c‖ (c moves, but orthogonally to p − c), so eq. (1)
    applies with that ∇_p h. Rows are point-major (row p·C + k).

    Args:
        starts_m, ends_m: segment ends [C, 3] (equal ends make a sphere); radii_m: radii [C].
    """
    seg = ends_m - starts_m  # [C, 3]
    len2 = (seg * seg).sum(axis=1)
    rel = points_m[:, None, :] - starts_m[None, :, :]  # [P, C, 3]
    t = (rel * seg[None, :, :]).sum(axis=2) / np.maximum(len2, _MIN_DISTANCE_M**2)
    t = np.clip(t, 0.0, 1.0)
    diff = rel - t[..., None] * seg[None, :, :]
    dist = np.sqrt((diff * diff).sum(axis=2))
    safe = np.maximum(dist, _MIN_DISTANCE_M)
    grad = np.where((dist > _MIN_DISTANCE_M)[..., None], diff / safe[..., None], 0.0)
    return _rows(dist - radii_m[None, :] - clearance_m, grad, jac, gamma, dt_s)


def halfspace_rows(
    points_m: F64, jac: F64, normals: F64, offsets_m: F64, clearance_m: float, gamma: float, dt_s: float
) -> tuple[F64, F64, F64]:
    """Half-spaces n·p ≤ d (unit n): h = d − n·p − clearance, ∇_p h = −n, so eq. (1) reads n·J_p·u ≤ γ·h/T. Rows
    are point-major (row p·H + k).

    Args:
        normals: unit normals [H, 3]; offsets_m: d [H] (m).
    """
    h = offsets_m[None, :] - points_m @ normals.T - clearance_m  # [P, H]
    grad = np.broadcast_to(-normals[None, :, :], (points_m.shape[0], *normals.shape))
    return _rows(h, grad, jac, gamma, dt_s)


def box_halfspaces(lower_m: F64, upper_m: F64) -> tuple[F64, F64]:
    """The 6 half-spaces (unit normals [6, 3], offsets [6]) of the box lower ≤ p ≤ upper: x ≤ hi as (e_x, hi) and
    x ≥ lo as (−e_x, −lo), per axis."""
    eye = np.eye(3)
    return np.concatenate((eye, -eye)), np.concatenate((upper_m, -lower_m))
