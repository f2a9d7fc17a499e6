"""Gymnasium ids of the simulation suite. Each RobotTaskEnv id takes `backend="mujoco"|"pybullet"`."""

from __future__ import annotations

import gymnasium as gym

# id -> (task, robot). The backend is a make() argument, so one id names the same task in both engines.
ROBOT_TASK_IDS: dict[str, tuple[str, str]] = {
    "robot_rl/PandaReach-v0": ("reach", "panda"),
    "robot_rl/PandaPush-v0": ("push", "panda"),
    "robot_rl/IiwaReach-v0": ("reach", "iiwa"),
    "robot_rl/CartPoleBalance-v0": ("cartpole_balance", "cartpole"),
    "robot_rl/PandaReachAround-v0": ("reach_around", "panda"),
}


def register_envs() -> None:
    """Register every suite id with Gymnasium (idempotent; engines are imported only when an env is made)."""
    for env_id, (task, robot) in ROBOT_TASK_IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sim.env:RobotTaskEnv", kwargs={"task": task, "robot": robot})
    from sim.metaworld_adapter import register_metaworld_envs

    register_metaworld_envs()
