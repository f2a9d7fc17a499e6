"""Q-function ensembles evaluated in one batched matmul per layer.

Optional normalization layers: LayerNorm (stabilizes high-UTD critics) and batch renormalization
(CrossQ, Bhatt et al. 2024, which removes the target network by normalizing the joint batch of
current and next state-actions).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from robot_rl.nets.mlp import EnsembleLinear, activation


class EnsembleBatchRenorm(nn.Module):
    """Batch renormalization (Ioffe 2017) over the batch dim of `[E, B, F]`, per ensemble member.

    During `warmup_steps` updates it is plain batch norm (r = 1, d = 0); afterwards the
    correction towards running statistics is clipped to `r_max`, `d_max`. In eval mode it uses the
    running statistics.
    """

    def __init__(
        self,
        ensemble_size: int,
        features: int,
        momentum: float = 0.01,
        eps: float = 1e-3,
        r_max: float = 3.0,
        d_max: float = 5.0,
        warmup_steps: int = 100_000,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ensemble_size, 1, features))
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, features))
        self.register_buffer("running_mean", torch.zeros(ensemble_size, 1, features))
        self.register_buffer("running_var", torch.ones(ensemble_size, 1, features))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.momentum, self.eps = momentum, eps
        self.r_max, self.d_max, self.warmup_steps = r_max, d_max, warmup_steps

    running_mean: torch.Tensor
    running_var: torch.Tensor
    steps: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            x_hat = (x - self.running_mean) / torch.sqrt(self.running_var + self.eps)
            return x_hat * self.weight + self.bias
        mean = x.mean(1, keepdim=True)
        var = x.var(1, unbiased=False, keepdim=True)
        std = torch.sqrt(var + self.eps)
        x_hat = (x - mean) / std
        if int(self.steps) >= self.warmup_steps:
            with torch.no_grad():
                running_std = torch.sqrt(self.running_var + self.eps)
                r = (std / running_std).clamp(1.0 / self.r_max, self.r_max)
                d = ((mean - self.running_mean) / running_std).clamp(-self.d_max, self.d_max)
            x_hat = x_hat * r + d
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var, self.momentum)
            self.steps += 1
        return x_hat * self.weight + self.bias


class CriticEnsemble(nn.Module):
    """`E` Q-networks: `(obs_norm [B, O], action [B, A]) → Q [E, B]`."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int],
        ensemble_size: int = 2,
        act: str = "relu",
        norm: str = "none",
        renorm_warmup_steps: int = 100_000,
    ) -> None:
        super().__init__()
        if norm not in ("none", "layer", "batch_renorm"):
            raise ValueError(f"unknown critic norm {norm!r}; choose none, layer or batch_renorm")
        self.ensemble_size = ensemble_size
        layers: list[nn.Module] = []
        prev = obs_dim + act_dim
        if norm == "batch_renorm":  # CrossQ normalizes the input too
            layers.append(EnsembleBatchRenorm(ensemble_size, prev, warmup_steps=renorm_warmup_steps))
        for h in hidden:
            layers.append(EnsembleLinear(ensemble_size, prev, h))
            if norm == "layer":
                layers.append(nn.LayerNorm(h))
            elif norm == "batch_renorm":
                layers.append(EnsembleBatchRenorm(ensemble_size, h, warmup_steps=renorm_warmup_steps))
            layers.append(activation(act))
            prev = h
        layers.append(EnsembleLinear(ensemble_size, prev, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, obs_norm: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs_norm, action], dim=-1)
        x = x.unsqueeze(0).expand(self.ensemble_size, -1, -1)  # [E, B, O + A]
        q: torch.Tensor = self.net(x).squeeze(-1)
        return q
