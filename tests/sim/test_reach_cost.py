"""The reach tasks' cost: the squared end-effector-to-goal distance (m²), ≥ 0, exactly 0 at the goal, in both
engines; rewards unchanged."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the robot_rl/* ids)

ENVS = ["robot_rl/PandaReach-v0", "robot_rl/PandaReachAround-v0"]


def _available(backend: str) -> bool:
    try:
        __import__({"mujoco": "mujoco", "pybullet": "pybullet"}[backend])
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
@pytest.mark.parametrize("env_id", ENVS)
def test_cost_is_the_squared_distance_and_zero_at_the_goal(env_id: str, backend: str) -> None:
    if not _available(backend):
        pytest.skip(f"{backend} is not installed")
    env = gym.make(env_id, backend=backend)
    try:
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(5):
            action = rng.uniform(-0.1, 0.1, env.action_space.shape).astype(np.float32)
            _, reward, terminated, truncated, info = env.step(action)
            assert info["cost"] >= 0.0
            assert info["cost"] == pytest.approx(info["distance_m"] ** 2, rel=1e-12, abs=1e-15)
            terms = [v for k, v in info.items() if k.startswith("reward/")]
            assert reward == pytest.approx(sum(terms))  # the cost is not a reward term: rewards are unchanged
            assert info["reward/distance"] == pytest.approx(-info["distance_m"])
            if terminated or truncated:
                break

        # Put the goal exactly on the end effector: the cost is exactly 0 there.
        base: Any = env.unwrapped  # the RobotTaskEnv: its task and backend
        ee, _ = base.backend.link_pose(base.robot.ee_link)
        base.task.target = np.array(ee, dtype=np.float64)
        outcome = base.task.evaluate(base.backend)
        assert outcome.extra["cost"] == 0.0 and outcome.extra["distance_m"] == 0.0
        assert outcome.reward_terms["distance"] == 0.0
    finally:
        env.close()
