"""Bad names and bad actions fail loudly with the offending value named, and a refused action changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from robot_rl.train.envs import EnvError, make_env
from sim.env import RobotTaskEnv
from sim.errors import SimError
from sim.registry import register_envs

# Explicit, not `import sim`: under pytest, `tests/` is on sys.path and `sim` resolves to the tests/sim folder.
register_envs()

BACKENDS = ("mujoco", "pybullet")


@pytest.fixture(params=BACKENDS)
def reach(request: pytest.FixtureRequest) -> Iterator[RobotTaskEnv]:
    env = RobotTaskEnv(task="reach", backend=request.param, max_steps=7)
    yield env
    env.close()


def test_unknown_env_id_suggests_the_close_match() -> None:
    with pytest.raises(EnvError, match=r"unknown environment id 'robot_rl/PandaReahc-v0'.*robot_rl/PandaReach-v0"):
        make_env("robot_rl/PandaReahc-v0")


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        ({"task": "reahc"}, "'reahc'"),
        ({"robot": "pandaa"}, "'pandaa'"),
        ({"backend": "bullet"}, "'bullet'"),
        ({"interface": "torque"}, "'torque'"),
    ],
)
def test_unknown_names_raise_sim_error_naming_the_value(kwargs: dict[str, Any], bad: str) -> None:
    with pytest.raises(SimError, match=bad) as excinfo:
        RobotTaskEnv(**kwargs)
    assert isinstance(excinfo.value, ValueError)
    assert "did you mean" in str(excinfo.value) or "known" in str(excinfo.value)


def test_unknown_names_suggest_the_intended_one() -> None:
    for kwargs, intended in (
        ({"task": "reahc"}, "reach"),
        ({"robot": "pandaa"}, "panda"),
        ({"backend": "bullet"}, "pybullet"),
        ({"interface": "joint_positon"}, "joint_position"),
    ):
        with pytest.raises(SimError, match=f"did you mean.*'{intended}'"):
            RobotTaskEnv(**kwargs)


def test_push_with_the_cartpole_robot_is_refused() -> None:
    with pytest.raises(SimError, match=r"'push'.*'cartpole'"):
        RobotTaskEnv(task="push", robot="cartpole")


def _obs_after(env: RobotTaskEnv, seed: int, actions: list[np.ndarray]) -> list[np.ndarray]:
    env.reset(seed=seed)
    return [env.step(a)[0] for a in actions]


@pytest.mark.parametrize(
    "bad_action, message",
    [
        (np.zeros(6, dtype=np.float32), r"shape \(7,\).*\(6,\)"),
        (np.zeros((1, 7), dtype=np.float32), r"shape \(7,\).*\(1, 7\)"),
        (np.array([0.1, 0.0, np.nan, 0.0, 0.0, 0.0, 0.0]), "NaN or Inf"),
        (np.array([0.1, 0.0, 0.0, np.inf, 0.0, 0.0, 0.0]), "NaN or Inf"),
        (np.array([0.1, 0.0, 0.0, -np.inf, 0.0, 0.0, 0.0]), "NaN or Inf"),
    ],
    ids=["short", "batched", "nan", "inf", "-inf"],
)
def test_malformed_action_is_refused_without_advancing_the_episode(
    reach: RobotTaskEnv, bad_action: np.ndarray, message: str
) -> None:
    actions = [np.full(7, 0.3 * k, dtype=np.float32) for k in (1, -1, 2, -2)]
    fresh = _obs_after(reach, seed=4, actions=actions)

    reach.reset(seed=4)
    observed = [reach.step(actions[0])[0]]
    for _ in range(3):  # refused as often as it is tried; nothing moves in between
        with pytest.raises(SimError, match=message):
            reach.step(bad_action)
    observed += [reach.step(a)[0] for a in actions[1:]]
    np.testing.assert_array_equal(np.stack(observed), np.stack(fresh))

    # The step counter did not move either: the episode still truncates after exactly max_steps valid steps.
    flags = [reach.step(actions[0])[2:4] for _ in range(reach.max_steps - len(actions))]
    assert flags[-1] == (False, True) and all(f == (False, False) for f in flags[:-1])


def test_step_before_reset_is_refused(reach: RobotTaskEnv) -> None:
    with pytest.raises(SimError, match="reset"):
        reach.step(np.zeros(7, dtype=np.float32))


@pytest.mark.parametrize("value", [5.0, -5.0])
def test_out_of_range_action_is_clipped_to_the_box(reach: RobotTaskEnv, value: float) -> None:
    clipped = np.full(7, np.sign(value), dtype=np.float32)
    expected = _obs_after(reach, seed=2, actions=[clipped, clipped])
    reach.reset(seed=2)
    big = np.full(7, value, dtype=np.float32)
    observed = []
    for _ in range(2):
        obs, _, _, _, info = reach.step(big)
        np.testing.assert_array_equal(info["applied_action"], clipped)
        observed.append(obs)
    np.testing.assert_array_equal(np.stack(observed), np.stack(expected))
    # ...and clipping matters: an in-range action of half the size goes somewhere else.
    half = _obs_after(reach, seed=2, actions=[0.5 * clipped, 0.5 * clipped])
    assert not np.array_equal(half[-1], expected[-1])
