"""Per-dimension min-max normalizers kept as buffers inside the policy (observations, and actions to [-1, 1]).

Z-scored observations reuse `robot_rl.nets.normalizer.ObsNormalizer`; `make_obs_normalizer` picks one by name.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from robot_rl.nets.normalizer import ObsNormalizer

OBS_NORMALIZATIONS = ("zscore", "minmax", "none")


class MinMaxNormalizer(nn.Module):
    """`(x − center) / half_range`: maps the running [min, max] of every dimension onto [-1, 1].

    Starts as the identity (center 0, half range 1). A dimension whose range is below `min_half_range` keeps a
    half range of 1 (it is only centered), so a constant dimension (a gripper that never moves) does not blow up a
    value that differs slightly at test time. `inverse` maps back. Works on any leading shape `[..., dim]`.
    """

    def __init__(self, dim: int, min_half_range: float = 1e-4) -> None:
        super().__init__()
        self.min_half_range = float(min_half_range)
        self.register_buffer("low", torch.zeros(dim))
        self.register_buffer("high", torch.zeros(dim))
        self.register_buffer("center", torch.zeros(dim))
        self.register_buffer("half_range", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    low: torch.Tensor
    high: torch.Tensor
    center: torch.Tensor
    half_range: torch.Tensor
    count: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.center) / self.half_range

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.half_range + self.center

    @torch.no_grad()
    def update(self, batch: npt.NDArray[np.float32]) -> None:
        """Widen the running range with a `[N, ..., dim]` batch (all leading axes are samples)."""
        flat = np.asarray(batch, np.float32).reshape(-1, self.low.shape[0])
        if flat.shape[0] == 0:
            return
        lo, hi = torch.as_tensor(flat.min(0)), torch.as_tensor(flat.max(0))  # on the learner's device
        if float(self.count) > 0:
            lo, hi = torch.minimum(lo, self.low), torch.maximum(hi, self.high)
        half = (hi - lo) / 2.0
        self.low.copy_(lo)
        self.high.copy_(hi)
        self.center.copy_((hi + lo) / 2.0)
        self.half_range.copy_(torch.where(half < self.min_half_range, torch.ones_like(half), half))
        self.count.add_(flat.shape[0])


def make_obs_normalizer(kind: str, dim: int, scale_floor: float = 0.0) -> ObsNormalizer | MinMaxNormalizer:
    """A `zscore` (running mean/std), `minmax` (running range → [-1, 1]) or `none` normalizer (each has `update`).

    `scale_floor`: the smallest std (zscore) or half range (minmax) a dimension is divided by; 0 = the
    normalizers' own numerical floors only.
    """
    if kind == "zscore":
        return ObsNormalizer.with_std_floor(dim, True, scale_floor)
    if kind == "minmax":
        return MinMaxNormalizer(dim, min_half_range=max(scale_floor, 1e-4))
    if kind == "none":
        return ObsNormalizer(dim, enabled=False)
    raise ValueError(f"unknown observation normalization {kind!r}; choose one of {OBS_NORMALIZATIONS}")
