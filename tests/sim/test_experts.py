"""The scripted experts solve their tasks in both engines (they are the demonstration source for BC and residual RL)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.env import RobotTaskEnv

N_EPISODES = 20
MIN_SUCCESS_RATE = 0.9


def _success_rate(task: str, backend: str) -> float:
    """Fraction of seeded episodes (seeds 0..19) that end in success at their final step under the expert."""
    env = RobotTaskEnv(task=task, backend=backend)
    expert = env.make_expert()
    successes = []
    for seed in range(N_EPISODES):
        obs, _ = env.reset(seed=seed)
        expert.reset()
        for _ in range(env.max_steps):
            action = expert.act(obs)
            assert env.action_space.contains(np.asarray(action, dtype=np.float32))
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        assert terminated or truncated
        successes.append(info["is_success"])
    env.close()
    return float(np.mean(successes))


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
@pytest.mark.parametrize("task", ["reach", "push", "cartpole_balance"])
def test_expert_succeeds_on_seeded_episodes(task: str, backend: str) -> None:
    rate = _success_rate(task, backend)
    assert rate >= MIN_SUCCESS_RATE, f"{task}/{backend}: expert success rate {rate:.2f} < {MIN_SUCCESS_RATE}"


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
@pytest.mark.parametrize("task", ["reach", "push", "cartpole_balance"])
def test_doing_nothing_does_not_meet_the_success_criterion(task: str, backend: str) -> None:
    """The expert's success rate means something: a zero action on the same seeds stays far below it."""
    env = RobotTaskEnv(task=task, backend=backend)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    successes = 0
    for seed in range(N_EPISODES):
        env.reset(seed=seed)
        for _ in range(env.max_steps):
            _, _, terminated, truncated, info = env.step(zero)
            if terminated or truncated:
                break
        successes += int(info["is_success"])
    env.close()
    assert successes / N_EPISODES < 0.5


@pytest.mark.parametrize("task", ["reach", "reach_around"])
def test_arm_experts_keep_to_the_robots_acceleration_limits(task: str) -> None:
    """Their demonstrations must run behind the deploy safety chain's acceleration limit unclipped: a chunked
    policy imitating an expert that jumps to full speed in one tick runs its chunk open-loop off the clipped path."""
    env = RobotTaskEnv(task=task, backend="mujoco")
    limit = np.asarray(env.robot.acceleration_limit_rad_s2)
    assert limit.size == len(env.robot.actuated)
    expert = env.make_expert()
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        expert.reset()
        v_prev = np.zeros(limit.size)  # every episode starts at rest
        for _ in range(env.max_steps):
            action = expert.act(obs)
            v = env.interface.to_physical(action)  # joint velocity command, rad/s
            assert np.all(np.abs(v - v_prev) <= limit * env.control_dt_s + 1e-6), (v - v_prev) / env.control_dt_s
            v_prev = v
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
    env.close()
