"""Scripted experts: the demonstration source for behaviour cloning and residual RL.

Each expert reads privileged state from the env (goals, object pose, Jacobians) — it is a data source, not a
deployable policy — and returns a normalized action for the env's own action interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import SimError
from sim.kinematics import dls_step, quat_to_matrix, rotation_error

if TYPE_CHECKING:
    from sim.env import RobotTaskEnv


class _IKExpert:
    """Cartesian waypoint following with a damped least-squares IK step that also holds the start orientation."""

    max_speed_m_s = 0.5
    pos_gain = 0.8  # fraction of the position error closed per control step (before the speed cap)
    rot_gain = 0.5

    def __init__(self, env: RobotTaskEnv) -> None:
        self.env = env
        self.r_target: np.ndarray | None = None

    def reset(self) -> None:
        self.r_target = None

    def _move_to(self, goal_pos: np.ndarray, max_speed: float | None = None) -> np.ndarray:
        env = self.env
        backend = env.backend
        ee, quat = backend.link_pose(env.robot.ee_link)
        r_cur = quat_to_matrix(quat)
        if self.r_target is None:
            self.r_target = r_cur
        step_max = (max_speed or self.max_speed_m_s) * env.control_dt_s
        dp = self.pos_gain * (goal_pos - ee)
        norm = float(np.linalg.norm(dp))
        if norm > step_max:
            dp *= step_max / norm
        dr = self.rot_gain * rotation_error(self.r_target, r_cur)
        jp, jr = backend.jacobian(env.robot.ee_link)
        dq = dls_step(np.vstack([jp, jr]), np.concatenate([dp, dr]))
        # Step from the commanded target, not the measured position: the servo lags its target, and stepping
        # from the measured position would make the arm crawl at a fraction of the planned speed.
        return env.action_for_joint_target(env.commanded_target + dq)


class ReachExpert(_IKExpert):
    """Straight line to the target."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._move_to(self.env.task.target)  # type: ignore[attr-defined]


class PushExpert(_IKExpert):
    """Lift, go behind the puck along the goal direction, descend, push through; re-approach if it slips away."""

    hover_z_m = 0.12
    push_z_m = 0.025
    max_speed_m_s = 0.4

    def act(self, obs: np.ndarray) -> np.ndarray:
        env = self.env
        task = env.task
        puck, _ = env.backend.object_pose("puck")
        goal = task.goal  # type: ignore[attr-defined]
        ee, _ = env.backend.link_pose(env.robot.ee_link)
        to_goal = (goal - puck)[:2]
        dist = float(np.linalg.norm(to_goal))
        if dist < 0.01:
            return self._move_to(np.array([ee[0], ee[1], max(ee[2], self.push_z_m)]))
        u = to_goal / dist
        half = 0.025
        behind = puck[:2] - u * (half + 0.035)  # where the fingertips start pushing
        rel = ee[:2] - puck[:2]
        along = float(rel @ u)  # negative = behind the puck
        lateral = float(abs(rel @ np.array([-u[1], u[0]])))
        low = ee[2] < self.push_z_m + 0.008
        aligned = along < -half and lateral < 0.015
        if low and aligned:
            # Push: drive the fingertips through the point where they would be with the puck at the goal.
            tip_goal = goal[:2] - u * (half + 0.005)
            return self._move_to(np.array([*tip_goal, self.push_z_m]), max_speed=0.15)
        if low and not aligned and float(np.linalg.norm(ee[:2] - behind)) > 0.02:
            # Low but in the wrong place: go up first so the approach never knocks the puck.
            return self._move_to(np.array([ee[0], ee[1], self.hover_z_m]))
        if float(np.linalg.norm(ee[:2] - behind)) > 0.01:
            return self._move_to(np.array([*behind, self.hover_z_m]))
        return self._move_to(np.array([*behind, self.push_z_m]), max_speed=0.25)


class CartPoleExpert:
    """Linear state feedback u = K (x, θ, ẋ, θ̇): the baseline stabilizer for Lyapunov work.

    K is the discrete LQR gain (Q = diag(100, 10, 10, 1), R = 1) of the MuJoCo model linearized at the upright
    equilibrium with `mujoco.mjd_transitionFD`, composed over one 20 ms control period; the same gains
    stabilize the PyBullet twin. The shipped URDF gives the pole a 1 kg·m² inertia, hence the large θ̇ gain.
    """

    gains = np.array([9.37, 558.4, 32.47, 806.6])

    def __init__(self, env: RobotTaskEnv) -> None:
        self.env = env

    def reset(self) -> None:
        """Stateless."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        e = self.env.task.state_error(self.env.backend)  # type: ignore[attr-defined]
        force = float(self.gains @ e)
        return self.env.interface.to_normalized(np.array([force])).astype(np.float32)


def make_expert(env: RobotTaskEnv) -> Any:
    """The scripted expert for this env's task."""
    experts = {"reach": ReachExpert, "push": PushExpert, "cartpole_balance": CartPoleExpert}
    try:
        return experts[env.task.name](env)
    except KeyError:
        raise SimError(f"no scripted expert for task {env.task.name!r}") from None
