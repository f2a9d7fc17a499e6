"""Observation normalizer kept as buffers inside the policy, so exported graphs take raw input."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn


class ObsNormalizer(nn.Module):
    """`(obs - mean) / sqrt(var + eps)`, clipped; running statistics updated from numpy batches.

    When disabled (`enabled=False`), mean stays 0 and var 1 so the module is the identity
    (up to the clip), which is what SAC/TD3 use by default.
    """

    def __init__(self, dim: int, enabled: bool = False, clip: float = 1e4, eps: float = 1e-8) -> None:
        super().__init__()
        self.enabled = enabled
        self.clip = float(clip)
        self.eps = float(eps)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    @classmethod
    def with_std_floor(cls, dim: int, enabled: bool, std_floor: float) -> ObsNormalizer:
        """A normalizer that divides by at least `std_floor` (in the observation's units) per dimension."""
        return cls(dim, enabled=enabled, eps=max(std_floor**2, 1e-8))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return obs
        return torch.clamp((obs - self.mean) / torch.sqrt(self.var + self.eps), -self.clip, self.clip)

    @torch.no_grad()
    def update(self, batch: npt.NDArray[np.float32]) -> None:
        """Merge a `[N, dim]` batch into the running mean/var (parallel Welford)."""
        if not self.enabled or batch.shape[0] == 0:
            return
        b = torch.as_tensor(batch, dtype=torch.float64)
        n_b = float(b.shape[0])
        mean_b = b.mean(0)
        var_b = b.var(0, unbiased=False)
        n_a = float(self.count.item())
        total = n_a + n_b
        delta = mean_b - self.mean.double()
        new_mean = self.mean.double() + delta * (n_b / total)
        m2 = self.var.double() * n_a + var_b * n_b + delta.pow(2) * (n_a * n_b / total)
        self.mean.copy_(new_mean.float())
        self.var.copy_((m2 / total).float())
        self.count.fill_(total)
