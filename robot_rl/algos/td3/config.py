"""TD3 configuration (defaults from the paper and Stable-Baselines3)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TD3Config:
    """Twin Delayed DDPG hyperparameters."""

    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor MLP."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of each critic MLP."""
    num_critics: int = 2
    """Critic ensemble size (targets use the minimum)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak coefficient for target actor and critics."""
    actor_lr: float = 1e-3
    """Actor learning rate (Adam)."""
    critic_lr: float = 1e-3
    """Critic learning rate (Adam)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    utd_ratio: int = 1
    """Gradient steps per environment step."""
    policy_delay: int = 2
    """Actor and targets are updated every `policy_delay` critic updates."""
    exploration_noise: float = 0.1
    """Std of Gaussian noise added to normalized actions during collection."""
    target_noise: float = 0.2
    """Std of target policy smoothing noise (normalized action units)."""
    target_noise_clip: float = 0.5
    """Clip of the target smoothing noise."""
    obs_normalization: bool = False
    """Keep running observation mean/std inside the policy (exported with it)."""
    obs_std_floor: float = 1e-2
    """Smallest std an observation dimension is divided by when `obs_normalization` is on, in its own units: a
    dimension that hardly varies in the data would otherwise turn a millimetre of difference at run time into
    thousands of standard deviations (and saturate the actor at its first update)."""

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.gamma < 1.0:
            problems.append(f"gamma must be in [0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            problems.append(f"tau must be in (0, 1], got {self.tau}")
        for name in ("actor_lr", "critic_lr"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                problems.append(f"{name} must be positive and finite, got {v}")
        for name in ("batch_size", "utd_ratio", "policy_delay"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_critics < 2:
            problems.append("num_critics must be >= 2")
        for name in ("exploration_noise", "target_noise", "target_noise_clip"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                problems.append(f"{name} must be >= 0 and finite, got {v}")
        if not (math.isfinite(self.obs_std_floor) and self.obs_std_floor >= 0):
            problems.append(f"obs_std_floor must be >= 0 and finite, got {self.obs_std_floor}")
        if problems:
            raise ValueError("invalid TD3Config: " + "; ".join(problems))
