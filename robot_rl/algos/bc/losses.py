"""Pure behaviour-cloning loss. Shapes: B = batch size, A = action size."""

from __future__ import annotations

import torch


def bc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between predicted and recorded normalized actions, both `[B, A]` in [-1, 1].

    Averaged over batch and action dimensions, so its scale does not depend on A.
    """
    if pred.dim() != 2 or pred.shape != target.shape:
        raise ValueError(f"bc_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be [B, A]")
    return (pred - target).pow(2).mean()
