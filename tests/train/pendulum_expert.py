"""A scripted Pendulum-v1 controller and a replay buffer of its transitions (offline-training test data)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from robot_rl.core.types import DataSource
from robot_rl.data.replay import ReplayBuffer

MAX_TORQUE = 2.0


def expert_norm(obs: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """The expert's normalized action for observations `[..., 3]` = (cos θ, sin θ, θ̇).

    A PD on sin θ near the top blended with energy pumping (push along θ̇) near the bottom, both smooth in the
    observation, so an MLP can fit it; it swings up and balances (mean return ≈ -190 on 10 seeded episodes).
    """
    obs = np.asarray(obs, np.float64)
    c, s, w = obs[..., 0:1], obs[..., 1:2], obs[..., 2:3]
    out: npt.NDArray[np.float32] = np.tanh(-(8.0 * s + 2.0 * w) * (1 + c) / 2 + 2.0 * w * (1 - c) ** 2 / 2).astype(
        np.float32
    )
    return out


def expert_physical(obs: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """The expert's torque in N*m (Pendulum's action range is [-2, 2])."""
    return (MAX_TORQUE * expert_norm(obs)).astype(np.float32)


def expert_buffer(episodes: int, seed: int = 100, source: int = DataSource.DATASET) -> ReplayBuffer:
    """`episodes` seeded expert episodes of Pendulum-v1 (200 steps each, truncated) in a buffer of exactly that size."""
    env = gym.make("Pendulum-v1")
    buf = ReplayBuffer(episodes * 200, 3, 1)
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        rows: dict[str, list[object]] = {k: [] for k in ("obs", "action", "reward", "next_obs", "term", "trunc")}
        terminated = truncated = False
        while not (terminated or truncated):
            a = expert_norm(obs)
            next_obs, reward, terminated, truncated, _ = env.step(MAX_TORQUE * a)
            for k, v in zip(rows, (obs, a, reward, next_obs, terminated, truncated)):
                rows[k].append(v)
            obs = next_obs
        obs_, act, rew, nxt, term, trunc = (np.asarray(rows[k], np.float32) for k in rows)
        buf.add_batch(obs_, act, rew, nxt, term, trunc, source=source)
    env.close()
    return buf


def expert_return(episodes: int, seed: int) -> list[float]:
    """Returns of the expert on `robot_rl.train.evaluate.evaluate`'s seeded episodes."""
    from robot_rl.train.evaluate import evaluate

    return list(evaluate(expert_physical, "Pendulum-v1", episodes, seed).returns)
