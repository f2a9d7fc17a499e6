"""The conditioning vector every denoiser block is modulated by: time embedding(s) + observation features."""

from __future__ import annotations

import torch
from torch import nn

from robot_rl.nets.generative.embedding import SinusoidalEmbedding


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al. 2018): `h · (1 + γ(c)) + β(c)`, zero-initialized so it starts
    as the identity."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """`h [B, C]` or `[B, C, L]` (channels second), `c [B, cond_dim]`."""
        gamma, beta = self.proj(c).chunk(2, dim=-1)
        if h.dim() == 3:  # conv features: broadcast over the time axis
            gamma, beta = gamma.unsqueeze(-1), beta.unsqueeze(-1)
        out: torch.Tensor = h * (1.0 + gamma) + beta
        return out


class TimeObsEncoder(nn.Module):
    """`(t [B], cond [B, C], r [B] | None) → [B, out_dim]`.

    With `two_times` (MeanFlow) the interval (r, t) is embedded as the pair (t, t − r), which the MeanFlow paper
    (Geng et al. 2025, §4 "conditioning") found to work well; `r=None` then means r = t (a zero interval, plain
    flow matching). Times are multiplied by `time_scale` before the sinusoid (see `SinusoidalEmbedding`).
    """

    def __init__(self, cond_dim: int, out_dim: int, time_dim: int, time_scale: float, two_times: bool) -> None:
        super().__init__()
        self.embed = SinusoidalEmbedding(time_dim)
        self.time_scale = float(time_scale)
        self.two_times = two_times
        n_times = 2 if two_times else 1
        self.net = nn.Sequential(
            nn.Linear(cond_dim + n_times * time_dim, out_dim), nn.Mish(), nn.Linear(out_dim, out_dim)
        )

    def forward(self, t: torch.Tensor, cond: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        parts = [self.embed(t * self.time_scale)]
        if self.two_times:
            gap = torch.zeros_like(t) if r is None else t - r
            parts.append(self.embed(gap * self.time_scale))
        out: torch.Tensor = self.net(torch.cat([*parts, cond], dim=-1))
        return out
