"""The env (and the recorded episodes) as a residual learner sees them: each observation followed by the frozen
base's proposal for it.

A residual learner acts on `[obs, a_base]` (O + A values, `a_base` normalized in [-1, 1]) and outputs the action
that is executed: `clip(a_base + scale · residual, -1, 1)`, in the env's own action units. Keeping the base out of
the learner and in the observation is what lets everything else stay as it is: the executed action is stored in
the replay buffer (so the critic scores the combined action, and demonstrations' actions need no inverting), the
TD target sees the next step's proposal in `next_obs`, and a stateful base (a chunked policy, an expert with
phases) is stepped exactly once per control step, in order, whoever acts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from robot_rl.data.datasets.episode import Episode
from robot_rl.residual.base import FrozenBase

F32 = npt.NDArray[np.float32]


def with_proposal(obs: npt.ArrayLike, proposal: F32) -> F32:
    """`[obs, proposal]` as one flat float32 observation."""
    out: F32 = np.concatenate([np.asarray(obs, dtype=np.float32).reshape(-1), proposal.astype(np.float32)])
    return out


class BaseProposalObservation(gym.Wrapper[F32, Any, Any, Any]):
    """`env` with the base's proposal appended to every observation; actions pass through unchanged.

    `reset` resets the base, then asks it for the first proposal; every `step` asks it once for the next
    observation's proposal (on the last step of an episode too, so `next_obs` is complete for the TD target).
    The observation space is the env's Box extended by A dimensions in [-1, 1].
    """

    def __init__(self, env: gym.Env[Any, Any], base: FrozenBase) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"a base proposal needs a Box observation space, got {type(space).__name__}")
        a = base.action_dim
        low = np.concatenate([space.low.reshape(-1), -np.ones(a)]).astype(np.float32)
        high = np.concatenate([space.high.reshape(-1), np.ones(a)]).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.base = base
        self.last_proposal: F32 = np.zeros(a, dtype=np.float32)
        """The proposal appended to the latest observation (what the base would do now)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[F32, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.base.reset()
        return self._augment(obs), info

    def step(self, action: Any) -> tuple[F32, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._augment(obs), reward, terminated, truncated, info

    def _augment(self, obs: npt.ArrayLike) -> F32:
        flat = np.asarray(obs, dtype=np.float32).reshape(-1)
        self.last_proposal = self.base.propose(flat)
        return with_proposal(flat, self.last_proposal)


def episode_with_proposals(episode: Episode, base: FrozenBase) -> Episode:
    """`episode` with the base's proposals appended to its observations, replayed in order from a reset.

    Proposal t is the base's for `observations[t]`, asked in time order, so a stateful base goes through the
    episode exactly as it would have live; the final observation (after the last action) gets one too. Actions,
    rewards and flags are unchanged (they are what was executed). `len(observations) == len(actions) + 1` as in
    every `Episode`.
    """
    base.reset()
    obs = np.asarray(episode.observations, dtype=np.float32)
    augmented = np.stack([with_proposal(o, base.propose(o)) for o in obs])
    return dataclasses.replace(episode, observations=augmented)
