"""The Lyapunov critic: a sum of squares, so it is a valid (non-negative) Lyapunov candidate by construction."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from robot_rl.nets.mlp import mlp


class LyapunovCritic(nn.Module):
    """`L_c(s, a) = ‖f(s, a)‖²` with f an MLP: `obs_norm [B, O]`, `action [B, A]` (normalized) → `[B]` ≥ 0."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], features: int, act: str = "relu") -> None:
        super().__init__()
        self.f = mlp(obs_dim + act_dim, hidden, features, act)

    def forward(self, obs_norm: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if obs_norm.shape[:-1] != action.shape[:-1]:
            raise ValueError(f"obs {tuple(obs_norm.shape)} and action {tuple(action.shape)} disagree on the batch")
        out: torch.Tensor = self.f(torch.cat([obs_norm, action], dim=-1)).pow(2).sum(-1)
        return out
