"""Deterministic evaluation of any physical-units policy (torch module or exported ONNX)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from robot_rl.core.specs import PolicySpec
from robot_rl.train.envs import episode_seed, make_env, make_env_for

ActFn = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class EvalResult:
    """Returns and lengths of seeded evaluation episodes."""

    returns: tuple[float, ...]
    """Undiscounted return of each episode."""
    lengths: tuple[int, ...]
    """Steps of each episode."""
    successes: tuple[bool, ...]
    """`info["is_success"]` at the end of each episode (False where the env does not report it)."""
    final_distances_m: tuple[float, ...] = ()
    """`info["distance_m"]` at the end of each episode, where the env reports it (robot_rl/* tasks)."""

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.successes))

    @property
    def mean_final_distance_m(self) -> float:
        """Mean final task distance (NaN where the env reports none)."""
        return float(np.mean(self.final_distances_m)) if self.final_distances_m else float("nan")


def evaluate(
    act: ActFn,
    env_id: str,
    episodes: int,
    seed: int,
    backend: str = "",
    on_reset: Callable[[npt.NDArray[np.float32]], object] | None = None,
    spec: PolicySpec | None = None,
    view: Callable[[gym.Env[Any, Any]], gym.Env[Any, Any]] | None = None,
    first: int = 0,
) -> EvalResult:
    """Run `episodes` episodes with `act(obs) -> physical action`; episode i is seeded the same every call.

    `backend` picks the physics engine of a robot_rl/* env (the sim-to-sim check evaluates in the other one).
    `on_reset(first_obs)` is called at the start of every episode. With the policy's `spec` (a bundle's), the env is
    made for it (`make_env_for`: its command interface, checked against its sizes and joints). `view` wraps the env
    the way the policy sees it (a learner on a frozen base: `robot_rl.residual.view`). `first` runs episodes
    `first .. first + episodes - 1` of the run instead, each seeded as in a full run (a share of a parallel
    evaluation: `robot_rl.scale.parallel_eval`).
    """
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    env = make_env_for(spec, env_id, backend) if spec is not None else make_env(env_id, backend=backend)
    if view is not None:
        try:
            env = view(env)
        except BaseException:
            env.close()
            raise
    returns, lengths, successes, distances = [], [], [], []
    try:
        for i in range(first, first + episodes):
            obs, info = env.reset(seed=episode_seed(seed, i, stream=1))
            if on_reset is not None:  # e.g. a safety chain re-arming at the start pose
                on_reset(np.asarray(obs, np.float32))
            total, steps, terminated, truncated = 0.0, 0, False, False
            while not (terminated or truncated):
                obs, reward, terminated, truncated, info = env.step(act(np.asarray(obs, np.float32)))
                total += float(reward)
                steps += 1
            returns.append(total)
            lengths.append(steps)
            successes.append(bool(info.get("is_success", False)))
            if "distance_m" in info:
                distances.append(float(info["distance_m"]))
    finally:
        env.close()
    return EvalResult(tuple(returns), tuple(lengths), tuple(successes), tuple(distances))
