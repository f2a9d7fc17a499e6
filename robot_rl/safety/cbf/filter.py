"""`CbfFilter`: the barrier rows of the current state, the velocity/acceleration box, and the QP between them.

Per step: forward kinematics and control-point Jacobians (`UrdfChain.point_jacobians`), the rows A·u ≤ b of every
barrier (robot_rl/safety/cbf/barriers.py), the box lb ≤ u ≤ ub (velocity limits ∩ acceleration limits around the
previous committed velocity). A command inside all of them passes untouched (same object, same bits, no solve);
one whose box-clipped value satisfies every row is clipped (the exact projection, no solve); otherwise the QP
projects it (robot_rl/safety/cbf/qp.py). Infeasible, slow or failed solves return None: the link holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.safety.cbf.barriers import (
    F64,
    box_halfspaces,
    capsule_rows,
    halfspace_rows,
    joint_limit_rows,
    sphere_rows,
)
from robot_rl.safety.cbf.config import CbfConfig
from robot_rl.safety.cbf.qp import QpBackend, make_backend
from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.links.joint_limits import NEXT_COMMAND_PERIODS
from robot_rl.safety.urdf_kinematics import UrdfChain

ROW_TOL = 1e-6
"""A row may be exceeded by this much (m/s, or rad/s for joint rows) and count as satisfied: the solvers stop at
1e-9, and the same tolerance on the unchanged path makes filtering a filtered command change nothing."""
FAR_RAD_S = 1e3
"""The QP sees a command at most this far outside the box (rad/s): a 1e300 command would wreck the solvers'
conditioning, and clipping first is nonexpansive, so the output stays a continuous function of the command."""

STATUSES = ("pass", "stop", "clipped", "solved", "infeasible", "timeout", "error")
"""`CbfStats.last_status` values: unchanged; a velocity stop let through; clipped into the box without a solve;
projected by the QP; and the three failures (the link holds)."""


@dataclass(slots=True)
class CbfStats:
    """Running counts of one filter (every `filter` call, `preview`s included)."""

    calls: int = 0
    """Commands filtered."""
    solves: int = 0
    """QP solves attempted."""
    clipped: int = 0
    """Commands only clipped into the velocity/acceleration box (no barrier could be active)."""
    infeasible: int = 0
    """Solves with no command satisfying every row and bound."""
    timeouts: int = 0
    """Solves over the time budget."""
    errors: int = 0
    """Solves that raised, returned non-finite values or a point violating a row."""
    corrections: int = 0
    """Commands changed (clipped or projected)."""
    correction_norm_max_rad_s: float = 0.0
    """Largest ‖u_out − u_in‖ (rad/s; the command counted at most `FAR_RAD_S` outside the box)."""
    correction_norm_sum_rad_s: float = 0.0
    """Sum of ‖u_out − u_in‖ over the corrections (rad/s)."""
    last_solve_s: float = 0.0
    """Wall time of the most recent solve, s."""
    max_solve_s: float = 0.0
    """Longest solve so far, s."""
    last_status: str = ""
    """One of `STATUSES`: what the most recent call did."""

    @property
    def correction_norm_mean_rad_s(self) -> float:
        """Mean ‖u_out − u_in‖ over the corrections (rad/s; 0 before the first)."""
        return self.correction_norm_sum_rad_s / self.corrections if self.corrections else 0.0


class CbfFilter:
    """Barrier rows + velocity/acceleration box + QP for one robot (numpy; the solver imported by name)."""

    def __init__(self, config: CbfConfig, safety: SafetyConfig, kinematics: UrdfChain) -> None:
        """Args:
        config: the barriers and solver.
        safety: joint names and limits (position limits shrunk by its margin, velocity and acceleration limits).
        kinematics: the URDF chain, in the safety config's joint order.

        Raises:
            ValueError: kinematics of another type or joint order, or a solver that does not import.
        """
        if not isinstance(kinematics, UrdfChain):
            raise ValueError(
                f"the cbf link needs a UrdfChain (point positions and Jacobians from the URDF), got {kinematics!r}"
            )
        if kinematics.joint_names != safety.joint_names:
            raise ValueError(
                f"the URDF chain's joints {list(kinematics.joint_names)} differ from the safety config's "
                f"{list(safety.joint_names)} (same joints, same order)"
            )
        self.config = config
        """The filter's parameters."""
        self._kin = kinematics
        n = safety.n_joints
        self.n = n
        """Number of joints."""
        m = safety.position_margin_rad
        self._lower = np.asarray(safety.position_lower_rad) + m
        self._upper = np.asarray(safety.position_upper_rad) - m
        self._vmax = np.asarray(safety.velocity_limit_rad_s)
        self._amax = np.asarray(safety.acceleration_limit_rad_s2)
        self._velocity_iface = safety.command_interface == "velocity"
        self._period_s = safety.control_period_s
        names = kinematics.point_names
        self._points = slice(0, len(names)) if config.control_points == "links+ee" else slice(len(names) - 1, None)
        point_names = names[self._points]
        self._clear = config.point_radius_m + config.margin_m
        sph = np.asarray(config.spheres_m, dtype=np.float64).reshape(-1, 4)
        self._sph_c, self._sph_r = sph[:, :3], sph[:, 3]
        cap = np.asarray(config.capsules_m, dtype=np.float64).reshape(-1, 7)
        self._cap_a, self._cap_b, self._cap_r = cap[:, :3], cap[:, 3:6], cap[:, 6]
        hs = np.asarray(config.halfspaces, dtype=np.float64).reshape(-1, 4)
        norm = np.linalg.norm(hs[:, :3], axis=1) if len(hs) else np.ones(0)
        normals, offsets = hs[:, :3] / norm[:, None], hs[:, 3] / norm
        hs_names = [f"half-space {k}" for k in range(len(hs))]
        if config.box_lower_m is not None and config.box_upper_m is not None:
            box_n, box_d = box_halfspaces(np.asarray(config.box_lower_m), np.asarray(config.box_upper_m))
            normals, offsets = np.concatenate((normals, box_n)), np.concatenate((offsets, box_d))
            hs_names += [f"box {side} {axis}" for side in ("max", "min") for axis in "xyz"]
        self._hs_n, self._hs_d = normals, offsets
        labels: list[str] = []
        if config.joint_limits:
            labels += [f"upper limit of {j}" for j in safety.joint_names]
            labels += [f"lower limit of {j}" for j in safety.joint_names]
        self._n_joint_rows = len(labels)
        for kind, count in (("sphere", len(sph)), ("capsule", len(cap))):
            labels += [f"{kind} {k} vs {p}" for p in point_names for k in range(count)]
        labels += [f"{h} vs {p}" for p in point_names for h in hs_names]
        self.row_labels: tuple[str, ...] = tuple(labels)
        """What each row of `rows` guards, e.g. "sphere 0 vs panda_hand", "upper limit of panda_joint4"."""
        self.backend: QpBackend = make_backend(config.solver, n, config.time_budget_s)
        """The QP solver."""
        self.stats = CbfStats()
        """Running counts (mutated by `filter`)."""

    @property
    def n_rows(self) -> int:
        """Number of barrier rows per step."""
        return len(self.row_labels)

    def rows(self, q_rad: F64, dt_s: float, q_pred_rad: F64 | None = None) -> tuple[F64, F64, F64]:
        """Every barrier row at `q_rad` [n] for a step of `dt_s`: (A [m, n], b [m], h [m]) in `row_labels` order.

        `q_pred_rad`: where the commands already sent put the joints (the final clamp's `predicted_position`,
        velocity interface); toward each limit the joint rows start from whichever of it and `q_rad` is further
        along, as the clamp does, so the clamp never has to cut what this filter let through."""
        parts: list[tuple[F64, F64, F64]] = []
        gamma, clear = self.config.gamma, self._clear
        if self._n_joint_rows:
            # Braking room as the final clamp keeps it: 3 periods for a velocity command, one step for a target.
            brake_s = NEXT_COMMAND_PERIODS * self._period_s if self._velocity_iface else dt_s
            q_hi = q_rad if q_pred_rad is None else np.maximum(q_rad, q_pred_rad)
            q_lo = q_rad if q_pred_rad is None else np.minimum(q_rad, q_pred_rad)
            parts.append(joint_limit_rows((q_hi, q_lo), self._lower, self._upper, gamma, dt_s, self._amax, brake_s))
        if len(self._sph_r) or len(self._cap_r) or len(self._hs_d):
            points, jac = self._kin.point_jacobians(q_rad)
            points, jac = points[self._points], jac[self._points]
            if len(self._sph_r):
                parts.append(sphere_rows(points, jac, self._sph_c, self._sph_r, clear, gamma, dt_s))
            if len(self._cap_r):
                parts.append(capsule_rows(points, jac, self._cap_a, self._cap_b, self._cap_r, clear, gamma, dt_s))
            if len(self._hs_d):
                parts.append(halfspace_rows(points, jac, self._hs_n, self._hs_d, clear, gamma, dt_s))
        if not parts:
            return np.zeros((0, self.n)), np.zeros(0), np.zeros(0)
        if len(parts) == 1:
            return parts[0]
        a, b, h = zip(*parts, strict=True)
        return np.concatenate(a), np.concatenate(b), np.concatenate(h)

    def bounds(self, v_prev_rad_s: F64, dt_s: float) -> tuple[F64, F64]:
        """(lb, ub) [n]: |u| ≤ v_max and |u − v_prev| ≤ a_max·dt; where both cannot hold the velocity limit wins."""
        a_dt = self._amax * dt_s
        vmax = self._vmax
        # Clipping v_prev ± a·dt into ±v_max keeps lb ≤ ub even after a previous command beyond v_max.
        ub = np.minimum(np.maximum(v_prev_rad_s + a_dt, -vmax), vmax)
        lb = np.minimum(np.maximum(v_prev_rad_s - a_dt, -vmax), vmax)
        return lb, ub

    def filter(
        self,
        q_rad: F64,
        u_policy_rad_s: F64,
        v_prev_rad_s: F64,
        dt_s: float,
        horizon_s: float | None = None,
        q_pred_rad: F64 | None = None,
    ) -> tuple[F64 | None, str, CbfStats]:
        """The command to send (the input object itself when unchanged), why it changed ("" if not), the stats.

        Args:
            q_rad: measured joint positions [n] (finite).
            u_policy_rad_s: the commanded joint velocity [n] (finite; may be huge).
            v_prev_rad_s: the previous committed joint velocity [n] (the acceleration bound's centre).
            dt_s: the step the acceleration bound allows for (> 0).
            horizon_s: the step T of the barrier rows (default dt_s): how long the command stays in force.
            q_pred_rad: the joints' predicted position from the commands already sent (`rows`), or None.

        Returns None with the reason when no command satisfies the barriers and bounds or the solver failed
        (`stats.last_status` says which).
        """
        stats = self.stats
        stats.calls += 1
        u = u_policy_rad_s
        a, b, h = self.rows(q_rad, horizon_s if horizon_s is not None else dt_s, q_pred_rad)
        lb, ub = self.bounds(v_prev_rad_s, dt_s)
        with np.errstate(all="ignore"):  # a huge command may overflow A·u: the test fails, which is right
            rows_ok = not len(b) or bool((a @ u - b).max() <= ROW_TOL)
        if rows_ok and bool(np.all(u >= lb)) and bool(np.all(u <= ub)):
            stats.last_status = "pass"
            return u, "", stats
        if rows_ok and self._velocity_iface and not u.any():
            # A velocity stop: the chain's clamp lets it win over the acceleration limit, and it meets every
            # barrier with h ≥ 0 (the rows have b ≥ 0 there), so it passes too.
            stats.last_status = "stop"
            return u, "", stats
        u_ref = np.minimum(np.maximum(u, lb - FAR_RAD_S), ub + FAR_RAD_S)
        # Rows the box already implies (max over the box of a·u ≤ b) can never bind: skip them.
        worst = np.maximum(a * lb, a * ub).sum(axis=1)
        active = worst > b
        out = np.minimum(np.maximum(u, lb), ub)
        # The box's projection (a clip) is the QP's answer whenever it meets every row: no solve needed.
        if not active.any() or (a[active] @ out - b[active]).max() <= ROW_TOL:
            out = self._onto_joint_rows(out, b)
            return out, self._changed(u_ref, out, "clipped", "velocity/acceleration bounds only"), stats
        stats.solves += 1
        res = self.backend.solve(u_ref, a, np.where(active, b, np.inf), lb, ub)
        stats.last_solve_s = res.solve_s
        stats.max_solve_s = max(stats.max_solve_s, res.solve_s)
        if res.u is None:
            return None, self._failed(res.status, a, b, h), stats
        out = self._onto_joint_rows(np.minimum(np.maximum(res.u, lb), ub), b)
        excess = a[active] @ out - b[active]
        if excess.max() > ROW_TOL:
            i = int(np.flatnonzero(active)[int(excess.argmax())])
            status = (
                f"error ({self.backend.name} returned a point exceeding {self.row_labels[i]} by {excess.max():.3g})"
            )
            return None, self._failed(status, a, b, h), stats
        binding = int(np.flatnonzero(active)[int(excess.argmax())])
        unit = "rad" if binding < self._n_joint_rows else "m"
        what = f"{self.row_labels[binding]} (h {h[binding]:.4g} {unit})"
        return out, self._changed(u_ref, out, "solved", what), stats

    def _onto_joint_rows(self, out: F64, b: F64) -> F64:
        """`out` with each joint's speed toward a limit cut to its row's bound exactly. The solver meets a row to
        within ROW_TOL, but the final clamp applies the same braking bound exactly and would count the last 1e-9
        rad/s as a change of its own (a false `position_limit` on nearly every filtered step)."""
        n = self._n_joint_rows // 2
        if not n:
            return out
        return np.minimum(np.maximum(out, -b[n : 2 * n]), b[:n])

    def _changed(self, u_ref: F64, out: F64, status: str, what: str) -> str:
        stats = self.stats
        stats.last_status = status
        stats.corrections += 1
        if status == "clipped":
            stats.clipped += 1
        norm = float(np.linalg.norm(out - u_ref))
        stats.correction_norm_sum_rad_s += norm
        stats.correction_norm_max_rad_s = max(stats.correction_norm_max_rad_s, norm)
        j = int(np.abs(out - u_ref).argmax())
        return (
            f"cbf: {what}; |du| {norm:.4g} rad/s, largest {self._kin.joint_names[j]} {float(u_ref[j]):.6g} -> "
            f"{float(out[j]):.6g} rad/s"
        )

    def _failed(self, status: str, a: F64, b: F64, h: F64) -> str:
        stats = self.stats
        category = status.split(" ", 1)[0].rstrip(":")
        if category == "infeasible":
            stats.infeasible += 1
        elif category == "timeout":
            stats.timeouts += 1
        else:
            category = "error"
            stats.errors += 1
        stats.last_status = category
        i = int(h.argmin()) if len(h) else -1
        unit = "rad" if i < self._n_joint_rows else "m"
        worst = f"; lowest barrier: {self.row_labels[i]} h {h[i]:.4g} {unit}" if i >= 0 else ""
        return f"cbf_{category}: no safe command from the QP ({status}){worst}"
