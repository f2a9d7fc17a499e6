"""The Meta-World adapter honours the suite's env contract: seeding, info terms, errors, expert, registration."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim.metaworld_adapter import METAWORLD_TASKS, MetaWorldEnv, register_metaworld_envs

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def reach() -> Iterator[MetaWorldEnv]:
    env = MetaWorldEnv("reach-v3")
    yield env
    env.close()


def _rollout(env: MetaWorldEnv, seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observations `[T+1, 39]` and rewards `[T]` of one seeded episode under a fixed action list `[T, 4]`."""
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, _, _, _ = env.step(action)
        observations.append(obs)
        rewards.append(float(reward))
    return np.stack(observations), np.asarray(rewards)


def test_gymnasium_env_checker_passes(reach: MetaWorldEnv) -> None:
    with warnings.catch_warnings():
        # Any checker warning fails the test, except the infinite bounds of Meta-World's padded object slots.
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r".*Box observation space (minimum|maximum) value is -?infinity")
        check_env(reach, skip_render_check=True)


def test_same_seed_and_actions_reproduce_the_episode_exactly() -> None:
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, size=(40, 4)).astype(np.float32)
    first, second = MetaWorldEnv("push-v3"), MetaWorldEnv("push-v3")
    obs_a, rew_a = _rollout(first, seed=7, actions=actions)
    _rollout(second, seed=123, actions=actions[:5])  # a different history before the seeded reset changes nothing
    obs_b, rew_b = _rollout(second, seed=7, actions=actions)
    first.close()
    second.close()
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)


def test_the_seed_picks_the_task_variation(reach: MetaWorldEnv) -> None:
    goals = {}
    for seed in range(5):
        obs, _ = reach.reset(seed=seed)
        np.testing.assert_array_equal(obs[-3:], reach.goal)  # goal observable, as in MT1
        goals[seed] = reach.goal
    assert len({tuple(g) for g in goals.values()}) == 5
    reach.reset(seed=3)
    np.testing.assert_array_equal(reach.goal, goals[3])
    reach.reset()  # unseeded resets keep drawing new variations from the seeded stream
    assert not np.array_equal(reach.goal, goals[3])


def test_step_reports_success_and_reward_terms_and_never_terminates() -> None:
    env = MetaWorldEnv("reach-v3", max_episode_steps=5)
    env.reset(seed=0)
    for t in range(5):
        _, reward, terminated, truncated, info = env.step(np.zeros(4, dtype=np.float32))
        assert isinstance(reward, float) and terminated is False
        assert truncated is (t == 4)
        assert isinstance(info["is_success"], bool) and info["success_now"] == bool(info["success"])
        for name in ("reward/grasp", "reward/in_place", "reward/unscaled"):
            assert isinstance(info[name], float)
        assert "near_object" in info  # Meta-World's own keys are kept
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, dtype=np.float32))
    env.close()


def test_success_latches_for_the_episode_as_in_metaworlds_protocol(reach: MetaWorldEnv) -> None:
    """Meta-World counts an episode a success if the flag was 1 at any step: reach the goal, then drive away;
    `is_success` stays True while the step's own flag (`success_now`) drops, and a reset clears it."""
    expert = reach.make_expert()
    obs, _ = reach.reset(seed=0)
    expert.reset()
    for _ in range(reach.max_episode_steps):
        obs, _, _, _, info = reach.step(expert.act(obs))
        if info["success_now"]:
            break
    assert info["is_success"] and info["success_now"]
    away = np.array([0.0, 0.0, 1.0, 0.0], dtype=np.float32)  # straight up, off the goal
    for _ in range(60):
        _, _, _, _, info = reach.step(away)
    assert not info["success_now"], "driving away should leave the goal"
    assert info["is_success"] is True
    reach.reset(seed=1)
    _, _, _, _, info = reach.step(np.zeros(4, dtype=np.float32))
    assert info["is_success"] is info["success_now"] is False


def test_control_rate_and_backend_are_readable(reach: MetaWorldEnv) -> None:
    assert reach.dt == pytest.approx(0.0125)  # 2.5 ms MuJoCo step × frame_skip 5
    assert reach.metadata["render_fps"] == 80
    assert reach.backend == "mujoco"
    assert reach.max_episode_steps == 500  # Meta-World's max_path_length


def test_scripted_expert_solves_reach(reach: MetaWorldEnv) -> None:
    expert = reach.make_expert()
    successes = 0
    for seed in range(20):
        obs, _ = reach.reset(seed=seed)
        expert.reset()
        truncated = False
        while not truncated:
            action = expert.act(obs)
            assert action.dtype == np.float32 and np.all(np.abs(action) <= 1.0)
            obs, _, _, truncated, info = reach.step(action)
            if info["is_success"]:
                successes += 1
                break
    assert successes / 20 >= 0.9, f"expert success {successes}/20"


@pytest.mark.parametrize("task", METAWORLD_TASKS)
def test_every_registered_task_has_a_working_expert(task: str) -> None:
    env = MetaWorldEnv(task)
    expert = env.make_expert()
    obs, _ = env.reset(seed=0)
    solved = False
    for _ in range(env.max_episode_steps):
        obs, _, _, truncated, info = env.step(expert.act(obs))
        solved = info["is_success"]
        if solved or truncated:
            break
    env.close()
    assert solved, f"{task}: the scripted expert did not succeed on seed 0"


def test_unknown_task_name_suggests_the_close_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown Meta-World task 'reach-v2'.*did you mean.*'reach-v3'"):
        MetaWorldEnv("reach-v2")


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.zeros(3, dtype=np.float32), r"shape \(4,\).*got shape \(3,\)"),
        (np.zeros((1, 4), dtype=np.float32), r"got shape \(1, 4\)"),
        (np.array([0.0, np.nan, 0.0, 0.0], dtype=np.float32), r"finite.*nan"),
        (np.array([np.inf, 0.0, 0.0, 0.0]), r"finite.*inf"),
    ],
)
def test_malformed_actions_are_refused(reach: MetaWorldEnv, action: np.ndarray, message: str) -> None:
    reach.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        reach.step(action)


def test_step_before_reset_is_refused(reach: MetaWorldEnv) -> None:
    with pytest.raises(RuntimeError, match="reset"):
        reach.step(np.zeros(4, dtype=np.float32))


def test_registration_is_idempotent_and_makes_the_adapter() -> None:
    register_metaworld_envs()
    register_metaworld_envs()
    for task in METAWORLD_TASKS:
        assert f"robot_rl/MetaWorld-{task}" in gym.registry
    env = gym.make("robot_rl/MetaWorld-reach-v3")
    assert isinstance(env.unwrapped, MetaWorldEnv) and env.unwrapped.task == "reach-v3"
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.close()


def test_importing_and_registering_does_not_import_metaworld() -> None:
    code = (
        "import sys; from sim.metaworld_adapter import register_metaworld_envs; register_metaworld_envs(); "
        "sys.exit('metaworld was imported' if 'metaworld' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
