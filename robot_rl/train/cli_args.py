"""Argument dataclasses of `robot-rl train <algo>` (module level so tyro can resolve their annotations)."""

from __future__ import annotations

from dataclasses import dataclass

from robot_rl.algos.sac.config import SACConfig
from robot_rl.algos.td3.config import TD3Config
from robot_rl.train.config import TrainConfig


@dataclass(frozen=True)
class TrainSAC:
    """Train Soft Actor-Critic. `--recipe crossq` selects the sample-efficient preset."""

    train: TrainConfig
    sac: SACConfig
    resume: bool = False
    """Continue the run in its directory from its latest checkpoint (`--total-steps` may extend it)."""


@dataclass(frozen=True)
class TrainTD3:
    """Train TD3 (Fujimoto et al. 2018)."""

    train: TrainConfig
    td3: TD3Config
    resume: bool = False
    """Continue the run in its directory from its latest checkpoint (`--total-steps` may extend it)."""
