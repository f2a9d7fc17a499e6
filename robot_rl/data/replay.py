"""Preallocated ring replay buffer (numpy only).

Stores `next_obs` explicitly so a truncated episode bootstraps from its real last observation
(never from the reset observation), and keeps `terminated` and `truncated` apart: only
`terminated` stops bootstrapping (SB3 issue #284 is the classic time-limit bug this avoids).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from robot_rl.core.types import Batch

_FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions with uniform sampling.

    Args:
        capacity: maximum number of transitions; the oldest are overwritten.
        obs_dim: flattened observation length.
        act_dim: action length (normalized actions in [-1, 1]).
        obs_dtype: dtype for observations (preserved on add, sample, save and load).
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, obs_dtype: Any = np.float32) -> None:
        if capacity < 1:
            raise ValueError(f"ReplayBuffer capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), dtype=obs_dtype)
        self.action = np.zeros((capacity, act_dim), dtype=np.float32)
        self.reward = np.zeros((capacity,), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=obs_dtype)
        self.terminated = np.zeros((capacity,), dtype=np.float32)
        self.truncated = np.zeros((capacity,), dtype=np.float32)
        self.pos = 0
        """Index the next transition is written to."""
        self.size = 0
        """Number of valid transitions (≤ capacity)."""

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: npt.ArrayLike,
        action: npt.ArrayLike,
        reward: float,
        next_obs: npt.ArrayLike,
        terminated: bool,
        truncated: bool,
    ) -> None:
        """Append one transition, overwriting the oldest when full."""
        i = self.pos
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self.truncated[i] = float(truncated)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
        """Uniform indices into the valid part of the buffer."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=batch_size)

    def gather(self, idx: npt.NDArray[np.int64]) -> Batch[npt.NDArray[Any]]:
        """The transitions at `idx` as a numpy Batch (copies)."""
        return Batch(
            obs=self.obs[idx],
            action=self.action[idx],
            reward=self.reward[idx],
            next_obs=self.next_obs[idx],
            terminated=self.terminated[idx],
            truncated=self.truncated[idx],
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch[npt.NDArray[Any]]:
        """A uniformly sampled batch."""
        return self.gather(self.sample_indices(batch_size, rng))

    def iterate(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch[npt.NDArray[Any]]]:
        """An endless iterator of sampled batches (what `Algorithm.update` consumes)."""
        while True:
            yield self.sample(batch_size, rng)

    # --- persistence: plain arrays + two integers, so it fits in safetensors + JSON ---

    def state_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The valid storage exactly as laid out in memory (so sampled indices survive a resume)."""
        return {name: np.ascontiguousarray(getattr(self, name)[: self.size]) for name in _FIELDS}

    def load_state_arrays(self, arrays: dict[str, npt.NDArray[Any]], pos: int) -> None:
        """Restore from `state_arrays` output and the saved write position `pos`."""
        n = int(arrays["reward"].shape[0])
        if n > self.capacity:
            raise ValueError(f"saved buffer holds {n} transitions, capacity is {self.capacity}")
        if not 0 <= pos < self.capacity or (n < self.capacity and pos != n):
            raise ValueError(f"saved buffer write position {pos} is inconsistent with size {n}")
        for name in _FIELDS:
            dst = getattr(self, name)
            src = arrays[name]
            if src.shape[1:] != dst.shape[1:] or src.dtype != dst.dtype:
                raise ValueError(
                    f"saved buffer field {name!r} has shape {src.shape} {src.dtype}, "
                    f"expected [*, {dst.shape[1:]}] {dst.dtype}"
                )
            dst[:n] = src
        self.size = n
        self.pos = pos
