"""Actors used in training: a tanh-squashed Gaussian (SAC) and a deterministic one (TD3)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.nets.mlp import activation, mlp

_LOG2 = math.log(2.0)


class GaussianActor(nn.Module):
    """`obs_norm [B, O]` → tanh-Gaussian over normalized actions in (-1, 1)."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int],
        act: str = "relu",
        log_std_min: float = -20.0,
        log_std_max: float = 2.0,
    ) -> None:
        super().__init__()
        self.body = mlp(obs_dim, hidden[:-1], hidden[-1], act)
        self.body.append(activation(act))
        self.head = nn.Linear(hidden[-1], 2 * act_dim)
        self.act_dim = act_dim
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max

    def mean_and_log_std(self, obs_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and clamped log std, each `[B, A]`."""
        mean, log_std = self.head(self.body(obs_norm)).split(self.act_dim, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(self, obs_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized sample in (-1, 1) `[B, A]` and its log-probability `[B]`."""
        mean, log_std = self.mean_and_log_std(obs_norm)
        std = log_std.exp()
        u = mean + std * torch.randn_like(mean)
        # Gaussian log-density of u, then the tanh change of variables written in the
        # numerically stable form log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) (SAC app. C).
        log_prob = (-0.5 * ((u - mean) / std).pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2.0 * (_LOG2 - u - F.softplus(-2.0 * u))).sum(-1)
        return torch.tanh(u), log_prob

    def deterministic(self, obs_norm: torch.Tensor) -> torch.Tensor:
        """tanh(mean) `[B, A]` (what the exported policy computes)."""
        return torch.tanh(self.mean_and_log_std(obs_norm)[0])


class GaussianMean(nn.Module):
    """Exposes only the pre-tanh mean of a GaussianActor: the trunk of the deployable policy."""

    def __init__(self, actor: GaussianActor) -> None:
        super().__init__()
        self.body = actor.body
        self.head = actor.head
        self.act_dim = actor.act_dim

    def forward(self, obs_norm: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.body(obs_norm))[..., : self.act_dim]
        return out


class DeterministicActor(nn.Module):
    """`obs_norm [B, O]` → pre-tanh action `[B, A]`; TD3 applies tanh (and the policy module too)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], act: str = "relu") -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, act_dim, act)

    def forward(self, obs_norm: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(obs_norm)
        return out
