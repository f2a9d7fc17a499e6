"""Training-time distributions over t ∈ [0, 1] for flow matching and MeanFlow."""

from __future__ import annotations

import torch

TIME_SAMPLINGS = ("logit_normal", "uniform")


def sample_times(n: int, kind: str, logit_mean: float = 0.0, logit_std: float = 1.0) -> torch.Tensor:
    """`[n]` times in (0, 1): `uniform`, or `logit_normal` = sigmoid(N(logit_mean, logit_std²)) (Esser et al. 2024
    §3.1), which spends more of the training on intermediate times where the velocity is hardest to predict."""
    if kind == "uniform":
        return torch.rand(n)
    if kind == "logit_normal":
        return torch.sigmoid(logit_mean + logit_std * torch.randn(n))
    raise ValueError(f"unknown time sampling {kind!r}; choose one of {TIME_SAMPLINGS}")
