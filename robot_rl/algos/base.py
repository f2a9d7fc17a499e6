"""The one protocol every training algorithm satisfies (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.policy import TanhPolicy


class Algorithm(Protocol):
    """An off-policy learner: the trainer owns the data, the algorithm owns the networks."""

    name: str

    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        """Normalized action(s) in [-1, 1] for raw observation(s) `[O]` or `[N, O]` (data collection)."""
        ...

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        """Pull as many batches as the update-to-data ratio needs and take gradient steps."""
        ...

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        """Feed new raw observations `[N, O]` to running statistics (observation normalizer)."""
        ...

    def policy(self) -> TanhPolicy:
        """The deployable policy module (shares weights with the learner; no critics)."""
        ...

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor needed to resume exactly: weights, buffers, optimizer state."""
        ...

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Inverse of `state_tensors` (plus the JSON `meta` from `state_meta`)."""
        ...

    def state_meta(self) -> dict[str, Any]:
        """JSON-serializable counters and optimizer hyperparameters."""
        ...
