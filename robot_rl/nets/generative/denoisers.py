"""The denoiser contract and the factory the learners build one from (`kind` = "mlp" or "unet")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from robot_rl.nets.generative.mlp_denoiser import FiLMMLPDenoiser
from robot_rl.nets.generative.unet1d import UNet1DDenoiser

DENOISER_KINDS = ("mlp", "unet")


class Denoiser(Protocol):
    """`(x [B, H, A], t [B], cond [B, C], r [B] | None) -> [B, H, A]`: ε, x₀ or a velocity, per the learner.

    `t` is the diffusion step (float of an integer in [0, T)) for DDPM, or continuous in [0, 1] for flow and
    MeanFlow (t = 1 noise, t = 0 data, see `samplers`); `r` is MeanFlow's interval start (None = r equals t).
    """

    def __call__(
        self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, r: torch.Tensor | None = None
    ) -> torch.Tensor: ...


def make_denoiser(
    kind: str,
    action_dim: int,
    horizon: int,
    cond_dim: int,
    width: int,
    depth: int,
    unet_widths: Sequence[int],
    cond_width: int,
    time_dim: int,
    time_scale: float,
    two_times: bool,
) -> nn.Module:
    """A FiLM MLP (`kind="mlp"`: `width` × `depth` blocks) or a 1-D U-Net (`kind="unet"`: `unet_widths`)."""
    if kind == "mlp":
        return FiLMMLPDenoiser(action_dim, horizon, cond_dim, width, depth, cond_width, time_dim, time_scale, two_times)
    if kind == "unet":
        return UNet1DDenoiser(
            action_dim, horizon, cond_dim, unet_widths, 5, cond_width, time_dim, time_scale, two_times
        )
    raise ValueError(f"unknown denoiser kind {kind!r}; choose one of {DENOISER_KINDS}")
