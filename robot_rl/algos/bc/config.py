"""Behaviour-cloning configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning: an MLP maps observations to the recorded normalized action (tanh output, MSE)."""

    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the policy MLP."""
    lr: float = 1e-3
    """Learning rate (Adam)."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW); 0 = plain Adam."""
    batch_size: int = 256
    """Transitions per gradient step."""
    obs_normalization: bool = True
    """Normalize observations with the dataset's mean/std (kept inside the exported policy)."""
    obs_std_floor: float = 1e-2
    """Smallest std an observation dimension is divided by, in its own units: a dimension that hardly varies in
    the data would otherwise turn a millimetre of difference at run time into hundreds of standard deviations."""
    exploration_noise: float = 0.1
    """Gaussian noise std (normalized units) added to the action when collecting online data (mixed mode)."""
    chunk_size: int = 1
    """H: actions predicted per query (1 = one action, today's BC; >1 = an action chunk, the baseline the
    generative policies are compared with)."""
    execution_horizon: int = 0
    """H_a: actions of each chunk executed before replanning (0 = the whole chunk)."""
    obs_history: int = 1
    """T_o: observations the policy conditions on (1 = the current one only)."""

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"lr must be positive and finite, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            problems.append(f"weight_decay must be >= 0 and finite, got {self.weight_decay}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not (math.isfinite(self.obs_std_floor) and self.obs_std_floor >= 0):
            problems.append(f"obs_std_floor must be >= 0 and finite, got {self.obs_std_floor}")
        if not self.actor_hidden or min(self.actor_hidden) < 1:
            problems.append(f"actor_hidden must be non-empty and positive, got {self.actor_hidden}")
        if not (math.isfinite(self.exploration_noise) and self.exploration_noise >= 0):
            problems.append(f"exploration_noise must be >= 0 and finite, got {self.exploration_noise}")
        if self.chunk_size < 1 or self.obs_history < 1:
            problems.append(f"chunk_size and obs_history must be >= 1, got {self.chunk_size}, {self.obs_history}")
        if not 0 <= self.execution_horizon <= self.chunk_size:
            problems.append(
                f"execution_horizon must be in [0, chunk_size={self.chunk_size}], got {self.execution_horizon}"
            )
        if problems:
            raise ValueError("invalid BCConfig: " + "; ".join(problems))
