"""Diffusion-policy configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robot_rl.algos.chunked.config import ChunkedConfig


@dataclass(frozen=True)
class DiffusionConfig(ChunkedConfig):
    """Diffusion Policy: a denoiser learns to undo DDPM noise on action chunks; DDIM samples a chunk in K steps."""

    num_train_steps: int = 100
    """T: DDPM diffusion steps of the squared-cosine schedule used in training."""
    prediction: Literal["epsilon", "sample"] = "epsilon"
    """What the denoiser predicts: the noise ε (Ho et al. 2020) or the clean chunk x₀ (`sample`)."""
    sampler_steps: int = 10
    """K: DDIM steps per chunk at evaluation and export (1 ≤ K ≤ num_train_steps)."""
    clip_sample: bool = True
    """Clip each DDIM step's predicted x₀ to [-1, 1] (the normalized action range)."""

    def problems(self) -> list[str]:
        out = super().problems()
        if self.num_train_steps < 1:
            out.append(f"num_train_steps must be >= 1, got {self.num_train_steps}")
        if not 1 <= self.sampler_steps <= max(self.num_train_steps, 1):
            out.append(
                f"sampler_steps must be in [1, num_train_steps={self.num_train_steps}], got {self.sampler_steps}"
            )
        if self.prediction not in ("epsilon", "sample"):
            out.append(f"prediction must be epsilon or sample, got {self.prediction!r}")
        return out
