"""Plain MLPs and batched ensembles of them (one matmul per layer for all members)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def activation(name: str) -> nn.Module:
    """Build an activation module by name; raises ValueError listing the known names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, act: str = "relu") -> nn.Sequential:
    """Linear → act → … → Linear. `[B, in_dim] -> [B, out_dim]`."""
    layers: list[nn.Module] = []
    prev = in_dim
    for h in hidden:
        layers += [nn.Linear(prev, h), activation(act)]
        prev = h
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """`E` independent linear layers evaluated with one batched matmul: `[E, B, I] -> [E, B, O]`."""

    def __init__(self, ensemble_size: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_dim))
        # Same init as nn.Linear, per member, so an ensemble of 2 matches two nn.Linear critics.
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # shared input for every member
            x = x.unsqueeze(0).expand(self.weight.shape[0], -1, -1)
        return torch.baddbmm(self.bias, x, self.weight)
