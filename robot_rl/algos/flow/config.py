"""Flow-matching configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from robot_rl.algos.chunked.config import ChunkedConfig


@dataclass(frozen=True)
class FlowConfig(ChunkedConfig):
    """Flow matching (rectified flow): regress the straight-path velocity from noise to action chunk; sample with K
    Euler or midpoint steps."""

    sampler: Literal["euler", "midpoint"] = "euler"
    """ODE integrator of the sampler (midpoint: two denoiser calls per step, second-order accurate)."""
    sampler_steps: int = 10
    """K: integration steps per chunk at evaluation and export."""
    prediction: Literal["velocity", "sample"] = "velocity"
    """What the network predicts: the path's velocity ε − x₀ (rectified flow) or the clean chunk x₀ (`sample`,
    clipped to [-1, 1] in the sampler; the velocity is then (z − x̂₀)/t)."""
    time_sampling: Literal["logit_normal", "uniform"] = "logit_normal"
    """Distribution of the training time t: logit-normal (Esser et al. 2024) or uniform."""
    logit_mean: float = 0.0
    """Mean of the logit-normal time distribution."""
    logit_std: float = 1.0
    """Standard deviation of the logit-normal time distribution."""

    def problems(self) -> list[str]:
        out = super().problems()
        if self.sampler_steps < 1:
            out.append(f"sampler_steps must be >= 1, got {self.sampler_steps}")
        if self.sampler not in ("euler", "midpoint"):
            out.append(f"sampler must be euler or midpoint, got {self.sampler!r}")
        if self.prediction not in ("velocity", "sample"):
            out.append(f"prediction must be velocity or sample, got {self.prediction!r}")
        if self.time_sampling not in ("logit_normal", "uniform"):
            out.append(f"time_sampling must be logit_normal or uniform, got {self.time_sampling!r}")
        if not (math.isfinite(self.logit_mean) and math.isfinite(self.logit_std) and self.logit_std > 0):
            out.append(f"logit_mean must be finite and logit_std positive, got {self.logit_mean}, {self.logit_std}")
        return out
