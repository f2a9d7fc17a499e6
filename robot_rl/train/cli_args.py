"""Argument dataclass of `robot-rl train <algo>`, generic over the algorithm's config (one per registry entry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from robot_rl.train.config import TrainConfig

AlgoConfigT = TypeVar("AlgoConfigT")


@dataclass(frozen=True)
class TrainArgs(Generic[AlgoConfigT]):
    """`robot-rl train <algo>`: the run's TrainConfig and the algorithm's config, flags flattened (no prefixes)."""

    train: TrainConfig
    algo: AlgoConfigT
    resume: bool = False
    """Continue the run in its directory from its latest checkpoint (`--total-steps` may extend it)."""
