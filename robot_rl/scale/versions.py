"""Weight versions of replayed transitions: a side column aligned with the replay buffer, and lag statistics.

The replay buffer's columns are what every learner samples; which broadcast of the policy chose an action is a
fact about distributed collection only, so it lives beside the buffer (same ring positions) rather than in it.
A version is the learner's count of `update()` calls when the weights were taken, so `learner − transition` is the
staleness of the data in updates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


class WeightVersions:
    """`version[i]` is the weight version of the transition in replay row `i` (-1 = row never written)."""

    def __init__(self, capacity: int) -> None:
        self.version = np.full(capacity, -1, np.int64)

    def record(self, start_pos: int, versions: npt.NDArray[np.int64]) -> None:
        """Versions of rows written from `start_pos` on, wrapping like `ReplayBuffer.add_batch`."""
        n, capacity = len(versions), len(self.version)
        if n > capacity:  # only the newest `capacity` rows survive, as in the buffer
            start_pos, versions = (start_pos + n - capacity) % capacity, versions[n - capacity :]
            n = capacity
        self.version[(start_pos + np.arange(n)) % capacity] = versions

    def valid(self, size: int) -> npt.NDArray[np.int64]:
        """The versions of the buffer's `size` valid rows (a view)."""
        return self.version[:size]

    def load(self, versions: npt.NDArray[Any]) -> None:
        """Restore from `valid(size)` of a checkpoint."""
        if versions.ndim != 1 or len(versions) > len(self.version):
            raise ValueError(f"saved weight versions have shape {versions.shape}; capacity is {len(self.version)}")
        self.version[: len(versions)] = versions


class LagStats:
    """Mean and max of (learner version − transition version) over the transitions added since the last flush."""

    def __init__(self) -> None:
        self.total, self.count, self.max = 0.0, 0, 0

    def add(self, learner_version: int, versions: npt.NDArray[np.int64]) -> None:
        """Account the transitions of one block as the learner stores them."""
        if len(versions) == 0:
            return
        lag = learner_version - versions
        self.total += float(lag.sum())
        self.count += len(lag)
        self.max = max(self.max, int(lag.max()))

    def flush(self) -> dict[str, float]:
        """`data/weight_lag_mean` and `data/weight_lag_max` (absent when nothing was added), then reset."""
        out = {}
        if self.count:
            out = {"data/weight_lag_mean": self.total / self.count, "data/weight_lag_max": float(self.max)}
        self.total, self.count, self.max = 0.0, 0, 0
        return out
