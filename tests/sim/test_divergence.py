"""A numerical blow-up ends the episode as a truncation, never as a success, and never with a silent reset."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pybullet as pb
import pytest

from sim.env import RobotTaskEnv
from sim.errors import SimError

Corrupt = Callable[[RobotTaskEnv], None]


def _mj_huge_velocity(env: RobotTaskEnv) -> None:
    env.backend.data.qvel[:] = 1e12


def _mj_nan_position(env: RobotTaskEnv) -> None:
    env.backend.data.qpos[0] = np.nan


def _pb_nan_velocity(env: RobotTaskEnv) -> None:
    # (A finite 1e30 does not blow up PyBullet: it clamps joint speeds. NaN is what a real blow-up looks like.)
    b = env.backend
    pb.resetJointState(b.body, b._jidx[0], 0.0, float("nan"), physicsClientId=b.cid)


def _pb_nan_position(env: RobotTaskEnv) -> None:
    b = env.backend
    pb.resetJointState(b.body, b._jidx[0], float("nan"), 0.0, physicsClientId=b.cid)


def _pb_nan_puck(env: RobotTaskEnv) -> None:
    b = env.backend
    pb.resetBaseVelocity(b.objects["puck"], [float("nan")] * 3, [0.0] * 3, physicsClientId=b.cid)


def _mj_nan_puck(env: RobotTaskEnv) -> None:
    b = env.backend
    b.data.qvel[b._obj_dadr["puck"]] = np.nan


CASES = [
    (task, backend, corrupt)
    for task in ("reach", "push", "cartpole_balance")
    for backend, corrupts in (
        ("mujoco", (_mj_huge_velocity, _mj_nan_position)),
        ("pybullet", (_pb_nan_velocity, _pb_nan_position)),
    )
    for corrupt in corrupts
] + [("push", "mujoco", _mj_nan_puck), ("push", "pybullet", _pb_nan_puck)]
IDS = [f"{t}-{b}-{c.__name__.lstrip('_')}" for t, b, c in CASES]


def _diverge(env: RobotTaskEnv, corrupt: Corrupt) -> tuple[np.ndarray, tuple]:
    """Three ordinary steps, then a corrupted state; returns the last good observation and the corrupted step."""
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    env.reset(seed=0)
    for _ in range(3):
        last_obs, *_ = env.step(zero)
    corrupt(env)
    return last_obs, env.step(zero)


@pytest.mark.parametrize("task, backend, corrupt", CASES, ids=IDS)
def test_blow_up_truncates_the_episode_and_demands_a_reset(task: str, backend: str, corrupt: Corrupt) -> None:
    env = RobotTaskEnv(task=task, backend=backend)
    before = env.diverged_count
    last_obs, (obs, reward, terminated, truncated, info) = _diverge(env, corrupt)
    assert (terminated, truncated) == (False, True)
    assert info["diverged"] is True and info["is_success"] is False
    assert np.all(np.isfinite(obs)) and np.isfinite(reward)
    np.testing.assert_array_equal(obs, last_obs)  # the last finite observation, not garbage
    assert env.diverged_count == before + 1 == info["diverged_count"]
    with pytest.raises(SimError, match="reset"):  # no silent reset: the caller must start a new episode
        env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    env.close()


def test_ordinary_steps_do_not_count_as_divergence() -> None:
    for backend in ("mujoco", "pybullet"):
        env = RobotTaskEnv(task="push", backend=backend)
        env.reset(seed=0)
        actions = np.random.default_rng(0).uniform(-1.0, 1.0, size=(env.max_steps, 7)).astype(np.float32)
        for action in actions:
            _, _, terminated, truncated, info = env.step(action)
            assert info["diverged"] is False
            if terminated or truncated:
                break
        assert env.diverged_count == 0
        env.close()


@pytest.mark.parametrize(
    "task, backend, corrupt",
    [(t, b, c) for t, b, c in CASES],
    ids=IDS,
)
def test_reset_after_a_blow_up_restores_a_working_env(task: str, backend: str, corrupt: Corrupt) -> None:
    env = RobotTaskEnv(task=task, backend=backend)
    _diverge(env, corrupt)
    fresh = RobotTaskEnv(task=task, backend=backend)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    recovered = [env.reset(seed=5)[0]] + [env.step(zero)[0] for _ in range(5)]
    expected = [fresh.reset(seed=5)[0]] + [fresh.step(zero)[0] for _ in range(5)]
    env.close()
    fresh.close()
    np.testing.assert_array_equal(np.stack(recovered), np.stack(expected))
