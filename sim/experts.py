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
    within_acceleration_limits = True
    """Ramp the joint velocity within the robot's acceleration limits (RobotDescription.acceleration_limit_rad_s2)."""
    # Fraction of the pose error closed per control step (before the speed cap). The servo lags its target by
    # about 1.5 control periods, so larger gains make this (integrating) loop ring.
    pos_gain = 0.3
    rot_gain = 0.3

    def __init__(self, env: RobotTaskEnv) -> None:
        self.env = env
        self.r_target: np.ndarray | None = None
        accel = env.robot.acceleration_limit_rad_s2
        # Largest change of the per-step joint displacement (velocity change × dt); inf = the maker gives none.
        limited = accel and self.within_acceleration_limits
        self._ddq_max = np.asarray(accel, np.float64) * env.control_dt_s**2 if limited else None
        self._dq_prev = np.zeros(len(env.robot.actuated))

    def reset(self) -> None:
        self.r_target = None
        self._dq_prev = np.zeros(len(self.env.robot.actuated))  # every episode starts at rest

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
        if self._ddq_max is not None:
            # Within the robot's acceleration limits (see RobotDescription.acceleration_limit_rad_s2): ramp up and
            # down over a few ticks rather than jumping to the IK step's velocity.
            dq = self._dq_prev + np.clip(dq - self._dq_prev, -self._ddq_max, self._ddq_max)
        self._dq_prev = dq
        # Step from the commanded target, not the measured position: the servo lags its target, and stepping
        # from the measured position would make the arm crawl at a fraction of the planned speed.
        return env.action_for_joint_target(env.commanded_target + dq)


class ReachExpert(_IKExpert):
    """Straight line to the target."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._move_to(self.env.task.target)  # type: ignore[attr-defined]


class PushExpert(_IKExpert):
    """Hover behind the puck (on the goal line), descend, push, and lift to re-approach if the puck slips away.

    A small phase machine with hysteresis: approach → descend → push, and push → retreat → approach when the
    pusher is no longer behind the puck. While pushing it aims just inside the puck's back face on the current
    puck→goal line, which steers out lateral drift.
    """

    hover_z_m = 0.12
    push_z_m = 0.018
    max_speed_m_s = 0.4
    # Its phase switches need the instant turnarounds: ramped, its PyBullet success fell from 100% to 45%.
    within_acceleration_limits = False
    push_speed_m_s = 0.1
    half_m = 0.025

    def reset(self) -> None:
        super().reset()
        self.phase = "approach"

    def act(self, obs: np.ndarray) -> np.ndarray:
        env = self.env
        puck, _ = env.backend.object_pose("puck")
        goal = env.task.goal  # type: ignore[attr-defined]
        ee, _ = env.backend.link_pose(env.robot.ee_link)
        to_goal = (goal - puck)[:2]
        dist = float(np.linalg.norm(to_goal))
        u = to_goal / max(dist, 1e-9)
        behind = puck[:2] - u * (self.half_m + 0.035)
        rel = ee[:2] - puck[:2]
        along, lateral = float(rel @ u), float(abs(rel @ np.array([-u[1], u[0]])))
        if not hasattr(self, "phase"):
            self.phase = "approach"
        if self.phase == "push" and (dist < 0.01 or lateral > 0.025 or along > -self.half_m + 0.005):
            self.phase = "hold" if dist < 0.01 else "retreat"
        if self.phase == "hold":
            if dist > 0.03:
                self.phase = "retreat"
            return self._move_to(np.array([ee[0], ee[1], self.push_z_m]))
        if self.phase == "retreat":
            if ee[2] > self.hover_z_m - 0.02:
                self.phase = "approach"
            return self._move_to(np.array([ee[0], ee[1], self.hover_z_m]))
        if self.phase == "approach":
            if float(np.linalg.norm(ee[:2] - behind)) < 0.01 and abs(ee[2] - self.hover_z_m) < 0.03:
                self.phase = "descend"
            return self._move_to(np.array([*behind, self.hover_z_m]))
        if self.phase == "descend":
            if ee[2] < self.push_z_m + 0.008:
                self.phase = "push"
            return self._move_to(np.array([*behind, self.push_z_m]), max_speed=0.25)
        aim = puck[:2] - u * (self.half_m - 0.01)
        return self._move_to(np.array([*aim, self.push_z_m]), max_speed=self.push_speed_m_s)


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
    from sim.reach_around_expert import ReachAroundExpert  # it builds on _IKExpert: imported here, not above

    experts = {
        "reach": ReachExpert,
        "push": PushExpert,
        "cartpole_balance": CartPoleExpert,
        "reach_around": ReachAroundExpert,
    }
    try:
        return experts[env.task.name](env)
    except KeyError:
        raise SimError(f"no scripted expert for task {env.task.name!r}") from None
