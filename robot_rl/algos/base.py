"""The one protocol every training algorithm satisfies (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.deployable import DeployablePolicy


class Algorithm(Protocol):
    """A learner: the trainer owns the data, the algorithm owns the networks.

    Built as `algo_cls(spec: PolicySpec, cfg)` by the registry (`robot_rl.algos.registry.register_algorithm`).
    The same object is driven online (env), offline (dataset) or on mixed data by `robot_rl.train.loop.train`;
    it never knows which: it only sees `Batch`es (whose optional fields it may use or ignore).
    """

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

    def policy(self) -> DeployablePolicy:
        """The deployable policy module: raw observations in, physical actions out (shares weights with the
        learner; no critics, targets or optimizers)."""
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
