"""1-D temporal-convolution U-Net with FiLM conditioning (the Diffusion Policy denoiser idea, Chi et al. 2023)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.nets.generative.conditioning import FiLM, TimeObsEncoder


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class _ConvBlock(nn.Sequential):
    """Conv1d (same length) → GroupNorm → Mish, on `[B, C, L]`."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        conv = nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2)
        super().__init__(conv, nn.GroupNorm(_groups(c_out), c_out), nn.Mish())


class _ResBlock(nn.Module):
    """Two conv blocks with FiLM between them and a 1×1 residual projection when the width changes."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int) -> None:
        super().__init__()
        self.block1 = _ConvBlock(c_in, c_out, kernel)
        self.film = FiLM(cond_dim, c_out)
        self.block2 = _ConvBlock(c_out, c_out, kernel)
        self.skip: nn.Module = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.block2(self.film(self.block1(h), c)) + self.skip(h)
        return out


class UNet1DDenoiser(nn.Module):
    """`forward(x [B, H, A], t [B], cond [B, C], r [B] | None) -> [B, H, A]`, convolving along the chunk's time axis.

    `widths = (w_0, …, w_L)`: level i has width w_i; L stride-2 downsamplings, so H is zero-padded at the end to a
    multiple of 2^L (a fixed pad computed here, no data-dependent branch in `forward`) and the output is cropped
    back to H.
    """

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        cond_dim: int,
        widths: Sequence[int] = (64, 128),
        kernel: int = 5,
        cond_width: int = 128,
        time_dim: int = 64,
        time_scale: float = 1.0,
        two_times: bool = False,
    ) -> None:
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError(f"UNet1DDenoiser: widths must be non-empty and positive, got {tuple(widths)}")
        self.action_dim, self.horizon = action_dim, horizon
        levels = len(widths) - 1
        self.pad = (-horizon) % (2**levels)
        self.encoder = TimeObsEncoder(cond_dim, cond_width, time_dim, time_scale, two_times)
        self.downs = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = action_dim
        for i, w in enumerate(widths):
            self.downs.append(_ResBlock(prev, w, cond_width, kernel))
            self.downsample.append(nn.Conv1d(w, w, 3, stride=2, padding=1) if i < levels else nn.Identity())
            prev = w
        self.mid = _ResBlock(widths[-1], widths[-1], cond_width, kernel)
        self.upsample = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i in reversed(range(levels)):
            self.upsample.append(nn.ConvTranspose1d(widths[i + 1], widths[i + 1], 4, stride=2, padding=1))
            self.ups.append(_ResBlock(widths[i + 1] + widths[i], widths[i], cond_width, kernel))
        head = nn.Conv1d(widths[0], action_dim, 1)
        nn.init.zeros_(head.weight)  # an untrained denoiser predicts 0, as the MLP one does
        nn.init.zeros_(head.bias)  # type: ignore[arg-type]  # Conv1d(bias=True) has one
        self.final = nn.Sequential(_ConvBlock(widths[0], widths[0], kernel), head)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, r: torch.Tensor | None = None
    ) -> torch.Tensor:
        c = self.encoder(t, cond, r)
        h = F.pad(x.transpose(1, 2), (0, self.pad))  # [B, A, H + pad]
        skips = []
        for res, down in zip(self.downs, self.downsample, strict=True):
            h = res(h, c)
            skips.append(h)
            h = down(h)
        h = self.mid(h, c)
        for up, res, skip in zip(self.upsample, self.ups, reversed(skips[:-1]), strict=True):
            h = res(torch.cat([up(h), skip], dim=1), c)
        out: torch.Tensor = self.final(h)[:, :, : self.horizon]
        return out.transpose(1, 2)
