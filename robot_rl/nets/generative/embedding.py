"""Sinusoidal time embedding (Vaswani et al. 2017 §3.5, as used for diffusion steps by Ho et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    """`t [B]` (float) → `[B, dim]`: `[sin(t·f_0), …, sin(t·f_{d/2-1}), cos(t·f_0), …]`, `f_i = 10000^(-i/(d/2-1))`.

    `t` is a float in whatever units the caller chose; the frequencies suit values spread over ~[0, 1000]. The
    diffusion learner passes the integer DDPM step (0 … T-1) as a float; the flow and MeanFlow denoisers pass a
    continuous t ∈ [0, 1] multiplied by their `time_scale` (1000), so both see the same frequency range.
    """

    def __init__(self, dim: int, max_period: float = 10_000.0) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"SinusoidalEmbedding: dim must be even and >= 4, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / (half - 1))
        self.register_buffer("freqs", freqs, persistent=False)  # a constant of dim, not a learned or saved state
        self.dim = dim

    freqs: torch.Tensor

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float().unsqueeze(-1) * self.freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)
