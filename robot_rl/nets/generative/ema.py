"""Exponential moving average of a module's weights, the copy that is evaluated and exported."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """`θ_ema ← d·θ_ema + (1 − d)·θ` after each optimizer step; buffers are copied as they are.

    The decay warms up as `d_n = min(decay, (1 + n) / (10 + n))` (n = updates so far), so a short run is not
    dominated by the random initialization. `module` is a frozen deep copy: it never receives gradients.
    """

    def __init__(self, source: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(source).requires_grad_(False)
        self.module.eval()
        self._src: list[torch.Tensor] = list(source.parameters())
        self._dst: list[torch.Tensor] = list(self.module.parameters())
        self._src_buffers = list(source.buffers())
        self._dst_buffers = list(self.module.buffers())
        self.num_updates = 0

    def current_decay(self) -> float:
        """The decay the next `update` uses."""
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self) -> None:
        d = self.current_decay()
        torch._foreach_lerp_(self._dst, self._src, 1.0 - d)
        for dst, src in zip(self._dst_buffers, self._src_buffers, strict=True):
            dst.copy_(src)
        self.num_updates += 1
