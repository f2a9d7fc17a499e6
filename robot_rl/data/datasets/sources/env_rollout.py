"""One seeded episode of an actor in a Gymnasium env, as an `Episode` (shared by the expert and bundle sources)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from robot_rl.data.datasets.episode import Episode

Actor = Callable[[npt.NDArray[Any]], npt.ArrayLike]
"""Observation → physical action (the env's action units)."""


def rollout_episode(
    env: gym.Env[Any, Any],
    act: Actor,
    *,
    seed: int,
    source: str,
    metadata: Mapping[str, Any] | None = None,
    on_reset: Callable[[], None] | None = None,
) -> Episode:
    """Run `act` in `env` from `reset(seed=seed)` until it terminates or truncates.

    `env` takes physical actions (`robot_rl.train.envs.make_env`); nothing filters them, so the executed action is
    the policy's. The env must end episodes by itself (its own time limit or a `max_episode_steps` wrapper).
    """
    obs, info = env.reset(seed=seed)
    if on_reset is not None:
        on_reset()
    observations = [np.asarray(obs, np.float32).reshape(-1)]
    actions: list[npt.NDArray[np.float64]] = []
    rewards: list[float] = []
    costs: list[float] = []
    terminated = truncated = False
    while not (terminated or truncated):
        action = np.asarray(act(obs), np.float64).reshape(-1)
        obs, reward, terminated, truncated, info = env.step(action.astype(np.float32))
        observations.append(np.asarray(obs, np.float32).reshape(-1))
        actions.append(action)
        rewards.append(float(reward))
        costs.append(float(info.get("cost", 0.0)))
    return Episode.build(
        observations=np.stack(observations),
        actions=np.stack(actions),
        rewards=rewards,
        # a time limit that falls on a terminal step is still a terminal step: never both
        terminated=bool(terminated),
        truncated=bool(truncated) and not terminated,
        cost=costs,
        success=bool(info.get("is_success", False)),
        source=source,
        metadata={**(metadata or {}), "seed": seed},
    )


def rollout_episodes(
    env: gym.Env[Any, Any],
    act: Actor,
    *,
    episodes: int,
    seed: int,
    source: str,
    metadata: Mapping[str, Any] | None = None,
    on_reset: Callable[[], None] | None = None,
    progress: Callable[[Episode], None] | None = None,
) -> list[Episode]:
    """`episodes` episodes of `rollout_episode`; episode i is reset with seed `seed + i`; `progress` sees each."""
    out = []
    for i in range(episodes):
        ep = rollout_episode(env, act, seed=seed + i, source=source, metadata=metadata, on_reset=on_reset)
        out.append(ep)
        if progress is not None:
            progress(ep)
    return out
