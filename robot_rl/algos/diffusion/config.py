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
    prediction: Literal["epsilon", "sample"] = "sample"
    """What the denoiser predicts: the clean chunk x₀ (`sample`, the default) or the noise ε (Ho et al. 2020;
    Diffusion Policy's choice). x₀ by default because at the budgets a CPU affords it learns far faster: on the
    multimodal reach-around task at 3,000 updates, ε-prediction succeeds on about half the episodes and x₀ on
    nearly all (bench/generative_success.py runs both, `diffusion` and `diffusion_x0`)."""
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
