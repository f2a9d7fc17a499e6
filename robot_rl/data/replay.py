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

from robot_rl.core.types import Batch, DataSource

_FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated", "cost", "intervention", "source")
_OPTIONAL = ("cost", "intervention", "source")
"""Columns added after the first checkpoint format: a saved buffer without them loads with zeros (online, no
cost, no intervention), which is what every transition of such a run was."""


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions with uniform sampling.

    Besides the six transition columns it keeps `cost` (float32), `intervention` (float32 0/1) and `source`
    (int64 `DataSource` codes), which fill a `Batch`'s optional fields of the same names.

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
        self.cost = np.zeros((capacity,), dtype=np.float32)
        self.intervention = np.zeros((capacity,), dtype=np.float32)
        self.source = np.zeros((capacity,), dtype=np.int64)
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
        cost: float = 0.0,
        intervention: bool = False,
        source: int = DataSource.ONLINE,
    ) -> None:
        """Append one transition, overwriting the oldest when full."""
        i = self.pos
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self.truncated[i] = float(truncated)
        self.cost[i] = cost
        self.intervention[i] = float(intervention)
        self.source[i] = int(source)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add_batch(
        self,
        obs: npt.ArrayLike,
        action: npt.ArrayLike,
        reward: npt.ArrayLike,
        next_obs: npt.ArrayLike,
        terminated: npt.ArrayLike,
        truncated: npt.ArrayLike,
        cost: npt.ArrayLike | None = None,
        intervention: npt.ArrayLike | None = None,
        source: npt.ArrayLike = DataSource.DATASET,
    ) -> None:
        """Append N transitions at once (a dataset's bulk fill): arrays `[N, ...]` like `add`'s arguments.

        `cost`/`intervention` default to 0; `source` is one code for all rows or `[N]` codes (default: dataset).
        Rows are written in order with the same wrap-around as N calls of `add` (only the last `capacity` stay).

        Raises:
            ValueError: columns of different lengths or wrong trailing shapes (the message names them).
        """
        cols: dict[str, npt.NDArray[Any]] = {
            "obs": np.asarray(obs),
            "action": np.asarray(action),
            "reward": np.asarray(reward),
            "next_obs": np.asarray(next_obs),
            "terminated": np.asarray(terminated),
            "truncated": np.asarray(truncated),
        }
        n = int(cols["obs"].shape[0]) if cols["obs"].ndim else -1  # rows: the observations' count
        cols["cost"] = np.zeros(n, np.float32) if cost is None else np.asarray(cost)
        cols["intervention"] = np.zeros(n, np.float32) if intervention is None else np.asarray(intervention)
        src = np.asarray(source)
        cols["source"] = np.full(n, int(src), np.int64) if src.ndim == 0 else src
        bad = [
            f"{name} {tuple(col.shape)} (expected {(n, *getattr(self, name).shape[1:])})"
            for name, col in cols.items()
            if col.shape != (n, *getattr(self, name).shape[1:])
        ]
        if n < 0 or bad:
            raise ValueError(f"add_batch: columns disagree with {n} rows of this buffer's shapes: {bad}")
        if n == 0:
            return
        if n > self.capacity:  # only the newest `capacity` rows survive, as with `add`
            self.pos = (self.pos + n - self.capacity) % self.capacity
            cols = {k: v[n - self.capacity :] for k, v in cols.items()}
            n = self.capacity
        idx = (self.pos + np.arange(n)) % self.capacity
        for name, col in cols.items():
            getattr(self, name)[idx] = col  # numpy casts to the column's dtype, as `add` does
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

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
            cost=self.cost[idx],
            intervention=self.intervention[idx],
            source=self.source[idx],
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
            if name in _OPTIONAL and name not in arrays:  # a checkpoint from before the column existed
                dst[:n] = 0
                continue
            src = arrays[name]
            if src.shape[1:] != dst.shape[1:] or src.dtype != dst.dtype:
                raise ValueError(
                    f"saved buffer field {name!r} has shape {src.shape} {src.dtype}, "
                    f"expected [*, {dst.shape[1:]}] {dst.dtype}"
                )
            dst[:n] = src
        self.size = n
        self.pos = pos
