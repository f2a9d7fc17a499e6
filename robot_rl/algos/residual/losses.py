"""Pure residual-action arithmetic; the TD3 losses themselves are `robot_rl.algos.td3.losses`."""

from __future__ import annotations

import torch


def combine(base_action: torch.Tensor, residual: torch.Tensor, scale: float) -> torch.Tensor:
    """The executed normalized action `clip(a_base + scale · residual, -1, 1)` (residual RL, Johannink et al. 2019,
    eq. 1, with the correction bounded by `scale`). `base_action, residual [B, A]`, residual in [-1, 1] (no shape
    check: it runs inside the traced export graph, where a Python-side comparison would be frozen in)."""
    return (base_action + scale * residual).clamp(-1.0, 1.0)
