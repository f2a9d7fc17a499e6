"""Source (a): seeded episodes of a simulation task's scripted expert (suite envs and Meta-World).

The experts (`sim/experts.py`, Meta-World's scripted policies) act in the raw env's normalized units; the episodes
store physical actions, mapped through the env's typed robot interface (Meta-World, which has none, acts in its own
[-1, 1] box, so its actions are stored as they are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robot_rl.core.specs import PolicySpec
from robot_rl.data.datasets.episode import Episode
from robot_rl.data.datasets.sources.env_rollout import rollout_episodes
from robot_rl.train.envs import EnvError, make_env, policy_spec_for

SOURCE = "expert"


def expert_episodes(
    env_id: str,
    episodes: int,
    seed: int = 0,
    *,
    max_steps: int = 0,
    backend: str = "",
    progress: Callable[[Episode], None] | None = None,
) -> tuple[PolicySpec, list[Episode]]:
    """`episodes` scripted-expert episodes of `env_id`; episode i is reset with seed `seed + i`.

    Args:
        env_id: a `robot_rl/*` suite or `robot_rl/MetaWorld-*` id.
        episodes: number of episodes (>= 1).
        seed: seed of episode 0.
        max_steps: episode length cap in steps (0 = the env's own time limit).
        backend: physics engine of a suite env ("" = its default).
        progress: called with each finished episode.

    Raises:
        EnvError (a ValueError): unknown id, or an env without a scripted expert.
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    if max_steps < 0:
        raise ValueError(f"--max-steps must be >= 0, got {max_steps}")
    kwargs: dict[str, Any] = {"max_episode_steps": max_steps} if max_steps else {}
    env = make_env(env_id, backend=backend, **kwargs)
    try:
        spec = policy_spec_for(env, env_id)
        make_expert = getattr(env.unwrapped, "make_expert", None)
        if not callable(make_expert):
            raise EnvError(
                f"{env_id} has no scripted expert; experts exist for the robot_rl/* suite and robot_rl/MetaWorld-* "
                "envs (robot-rl envs lists them)"
            )
        try:
            expert = make_expert()
        except ValueError as exc:  # sim.errors.SimError: a suite task without an expert
            raise EnvError(f"{env_id}: {exc}") from None
        command = spec.robot.command if spec.robot is not None else None

        def act(obs: Any) -> Any:
            action = expert.act(obs)  # normalized, in the raw env's units
            return command.to_physical(action) if command is not None else np.asarray(action, np.float64)

        metadata = {"env_id": env_id, "backend": backend, "expert": type(expert).__name__}
        out = rollout_episodes(
            env, act, episodes=episodes, seed=seed, source=SOURCE, metadata=metadata, on_reset=expert.reset,
            progress=progress,
        )  # fmt: skip
        return spec, out
    finally:
        env.close()
