"""The Lyapunov critic: a sum of squares, so it is a valid (non-negative) Lyapunov candidate by construction; and
its deployable view in raw observation and physical action units (`PhysicalLyapunov`, exported with the bundle)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.nets.deployable import physical_action_affine
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


class PhysicalLyapunov(nn.Module):
    """The deployable view of a `LyapunovCritic`: `obs [B, O]` (raw), `action [B, A]` (physical) → `L [B]` ≥ 0.

    The learner's observation normalizer and the physical → normalized action map (the inverse of `TanhPolicy`'s
    `tanh · scale + bias`) are inside, so the exported critic graph takes what the robot measures and commands.
    It shares the learner's modules (no copy): the exporter copies it.
    """

    def __init__(self, spec: PolicySpec, normalizer: nn.Module, critic: LyapunovCritic) -> None:
        super().__init__()
        self.spec = spec
        self.normalizer = normalizer
        self.critic = critic
        scale, bias = physical_action_affine(spec)
        self.register_buffer("action_scale", scale)
        self.register_buffer("action_bias", bias)

    action_scale: torch.Tensor
    action_bias: torch.Tensor

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        action_norm = (action - self.action_bias) / self.action_scale
        out: torch.Tensor = self.critic(self.normalizer(obs), action_norm)
        return out
