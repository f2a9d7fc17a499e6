"""Every suite id honours the Gymnasium contract in both engines: checker, seeding, state snapshots, info terms."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim.env import RobotTaskEnv
from sim.errors import SimError
from sim.registry import ROBOT_TASK_IDS, register_envs

# Explicit, not `import sim`: under pytest, `tests/` is on sys.path and `sim` resolves to the tests/sim folder.
register_envs()

BACKENDS = ("mujoco", "pybullet")
CASES = [(env_id, backend) for env_id in ROBOT_TASK_IDS for backend in BACKENDS]
REACH_IDS = [env_id for env_id, (task, _) in ROBOT_TASK_IDS.items() if task == "reach"]


@pytest.fixture(params=CASES, ids=[f"{i.split('/')[1]}-{b}" for i, b in CASES])
def env(request: pytest.FixtureRequest) -> Iterator[gym.Env[Any, Any]]:
    env_id, backend = request.param
    made = gym.make(env_id, backend=backend)
    yield made
    made.close()


def _actions(env: gym.Env[Any, Any], n: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    shape = env.action_space.shape
    assert shape is not None
    return (scale * np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, *shape))).astype(np.float32)


def _rollout(env: gym.Env[Any, Any], actions: np.ndarray) -> dict[str, list[Any]]:
    """Steps `actions` (stopping at the episode end) and records everything that must be reproducible."""
    out: dict[str, list[Any]] = {"obs": [], "reward": [], "terms": [], "done": []}
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out["obs"].append(obs)
        out["reward"].append(reward)
        out["terms"].append({k: v for k, v in info.items() if k.startswith("reward/")})
        out["done"].append((terminated, truncated))
        if terminated or truncated:
            break
    return out


def _assert_identical(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> None:
    assert len(a["obs"]) == len(b["obs"])
    np.testing.assert_array_equal(np.stack(a["obs"]), np.stack(b["obs"]))
    assert a["reward"] == b["reward"]  # exact float equality, not approx
    assert a["terms"] == b["terms"]
    assert a["done"] == b["done"]


def test_gymnasium_env_checker_passes(env: gym.Env[Any, Any]) -> None:
    with warnings.catch_warnings():
        # Any checker warning fails the test, except the deliberately unbounded (±inf) observation Box.
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r".*Box observation space (minimum|maximum) value is -?infinity")
        check_env(env.unwrapped, skip_render_check=True)


def test_same_seed_and_actions_reproduce_bitwise_on_separate_instances(env: gym.Env[Any, Any]) -> None:
    spec = env.unwrapped.spec
    assert spec is not None
    other = gym.make(spec.id, backend=env.unwrapped.backend_name)
    actions = _actions(env, 20)
    obs_a, _ = env.reset(seed=11)
    obs_b, _ = other.reset(seed=11)
    np.testing.assert_array_equal(obs_a, obs_b)
    _assert_identical(_rollout(env, actions), _rollout(other, actions))
    other.close()


def test_same_seed_and_actions_reproduce_bitwise_after_a_second_reset(env: gym.Env[Any, Any]) -> None:
    actions = _actions(env, 20)
    first_obs, _ = env.reset(seed=11)
    first = _rollout(env, actions)
    env.reset(seed=99)  # a different episode in between must leave no trace
    _rollout(env, _actions(env, 20, seed=1))
    second_obs, _ = env.reset(seed=11)
    np.testing.assert_array_equal(first_obs, second_obs)
    _assert_identical(first, _rollout(env, actions))


def test_different_seeds_start_different_episodes(env: gym.Env[Any, Any]) -> None:
    # Without this, the reproducibility tests above would also pass for an env that ignores its seed.
    obs_a, _ = env.reset(seed=1)
    obs_b, _ = env.reset(seed=2)
    assert not np.array_equal(obs_a, obs_b)


def test_state_snapshot_restores_the_future_exactly(env: gym.Env[Any, Any]) -> None:
    u = env.unwrapped
    actions = _actions(env, 10, scale=0.3)
    env.reset(seed=3)
    for action in _actions(env, 3, seed=5, scale=0.3):
        env.step(action)
    snapshot = u.get_state()
    first = _rollout(env, actions)
    u.set_state(snapshot)
    _assert_identical(first, _rollout(env, actions))


@pytest.mark.parametrize(
    "env_id, backend",
    [
        pytest.param(
            "robot_rl/PandaPush-v0",
            "pybullet",
            marks=pytest.mark.xfail(
                strict=True,
                reason="known limitation (docs/sim.md): PyBullet rebuilds the puck at reset() to clear Bullet's "
                "contact warm starts, and pb.restoreState does not bring those back, so set_state *across* a "
                "reset() drifts (~5e-4 m in the puck); within an episode the restore is exact",
            ),
        ),
        *[(i, b) for i, b in CASES if (i, b) != ("robot_rl/PandaPush-v0", "pybullet")],
    ],
)
def test_state_snapshot_survives_an_intervening_reset(env_id: str, backend: str) -> None:
    """`set_state` promises an exact return to the snapshot, also after the env moved on to another episode."""
    env = gym.make(env_id, backend=backend)
    u = env.unwrapped
    actions = _actions(env, 10, scale=0.3)
    env.reset(seed=1)
    for action in _actions(env, 3, seed=5, scale=0.3):
        env.step(action)
    snapshot = u.get_state()
    first = _rollout(env, actions)
    env.reset(seed=9)
    _rollout(env, _actions(env, 2, seed=6, scale=0.3))
    u.set_state(snapshot)
    second = _rollout(env, actions)
    env.close()
    _assert_identical(first, second)


def test_zero_action_keeps_observations_finite(env: gym.Env[Any, Any]) -> None:
    shape = env.action_space.shape
    assert shape is not None
    zero = np.zeros(shape, dtype=np.float32)
    obs, _ = env.reset(seed=0)
    assert np.all(np.isfinite(obs))
    for _ in range(100):
        obs, reward, terminated, truncated, _ = env.step(zero)
        assert np.all(np.isfinite(obs)) and math.isfinite(reward)
        if terminated or truncated:
            obs, _ = env.reset()
            assert np.all(np.isfinite(obs))


def test_observation_layout_matches_the_named_entries(env: gym.Env[Any, Any]) -> None:
    u = env.unwrapped
    obs, _ = env.reset(seed=0)
    sizes = [int(np.prod(shape)) for shape in u.observation_shapes.values()]
    assert obs.shape == (sum(sizes),) == env.observation_space.shape
    # Without randomization the flat observation is exactly the named entries concatenated in layout order.
    named = u.observation_dict()
    assert list(named) == list(u.observation_shapes)
    np.testing.assert_array_equal(obs, np.concatenate([np.ravel(named[k]) for k in u.observation_shapes]))


def test_info_reports_success_and_reward_terms_that_sum_to_the_reward(env: gym.Env[Any, Any]) -> None:
    env.reset(seed=0)
    steps = 0
    for action in _actions(env, 30):
        _, reward, terminated, truncated, info = env.step(action)
        steps += 1
        assert isinstance(info["is_success"], bool)
        terms = {k: v for k, v in info.items() if k.startswith("reward/")}
        assert terms, "no reward/<term> entries in info"
        assert math.fsum(terms.values()) == pytest.approx(reward, rel=1e-12, abs=1e-12)
        assert not (terminated and truncated)
        if terminated or truncated:
            env.reset()
    assert steps == 30


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("env_id", REACH_IDS)
def test_truncation_happens_exactly_at_max_steps(env_id: str, backend: str) -> None:
    env = gym.make(env_id, backend=backend, max_steps=7)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    env.reset(seed=0)
    flags = [env.step(zero)[2:4] for _ in range(7)]
    assert flags == [(False, False)] * 6 + [(False, True)]
    with pytest.raises(SimError, match="reset"):  # the episode is over: no silent continuation
        env.step(zero)
    env.close()


def _steps_until_done(env: gym.Env[Any, Any], action: np.ndarray) -> tuple[int, bool, bool, dict[str, Any]]:
    env.reset(seed=0)
    step = 0
    while True:
        _, _, terminated, truncated, info = env.step(action)
        step += 1
        if terminated or truncated:
            return step, terminated, truncated, info


@pytest.mark.parametrize("backend", BACKENDS)
def test_cartpole_pushed_at_full_force_terminates_before_the_time_limit(backend: str) -> None:
    env = gym.make("robot_rl/CartPoleBalance-v0", backend=backend)
    full = np.ones(env.action_space.shape, dtype=np.float32)
    step, terminated, truncated, info = _steps_until_done(env, full)
    env.close()
    assert (terminated, truncated) == (True, False)
    assert step < env.unwrapped.max_steps
    assert info["is_success"] is False and info["reward/alive"] == 0.0

    # The pole falling on the very last step is still a termination, not also a truncation.
    env = gym.make("robot_rl/CartPoleBalance-v0", backend=backend, max_steps=step)
    assert _steps_until_done(env, full)[:3] == (step, True, False)
    env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_snapshot_restores_the_step_counter(backend: str) -> None:
    env = gym.make("robot_rl/PandaReach-v0", backend=backend, max_steps=7)
    u = env.unwrapped
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    env.reset(seed=0)
    for _ in range(3):
        env.step(zero)
    snapshot = u.get_state()
    first = [env.step(zero)[3] for _ in range(4)]
    u.set_state(snapshot)
    second = [env.step(zero)[3] for _ in range(4)]
    env.close()
    assert first == second == [False, False, False, True]


def test_robot_interface_describes_joints_layout_and_action_interface(env: gym.Env[Any, Any]) -> None:
    u: RobotTaskEnv = env.unwrapped  # type: ignore[assignment]
    robot = u.robot_interface()
    assert robot.joint_names == tuple(u.robot.joints)
    assert {e.name: e.shape for e in robot.observation} == dict(u.observation_shapes)
    assert robot.observation_dim == env.observation_space.shape[0]
    assert robot.observation[0].name == "joint_pos" and robot.observation[0].units in ("rad", "m", "m|rad")
    cmd = robot.command
    n_act = env.action_space.shape[0]
    assert cmd.joints == tuple(u.robot.actuated) and cmd.dim == n_act
    low, high = np.asarray(cmd.physical_low), np.asarray(cmd.physical_high)
    assert low.shape == high.shape == (n_act,)
    assert np.all(np.isfinite(low)) and np.all(low < high)
    assert cmd.type == u.interface.name
    # The env's own map and the one core map agree (the sim, exporter, eval and node share it).
    a = np.linspace(-1.0, 1.0, n_act)
    np.testing.assert_allclose(u.interface.to_physical(a), cmd.to_physical(a))
    assert type(robot).from_json(robot.to_json()) == robot
