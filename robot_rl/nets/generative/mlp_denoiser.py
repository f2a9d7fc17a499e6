"""FiLM-conditioned residual MLP denoiser over a flattened action chunk (the CPU-friendly default)."""

from __future__ import annotations

import torch
from torch import nn

from robot_rl.nets.generative.conditioning import FiLM, TimeObsEncoder


class _FiLMBlock(nn.Module):
    """`h + Linear(Mish(FiLM(LayerNorm(Linear(h)), c)))`: a pre-activation residual block modulated by `c`."""

    def __init__(self, width: int, cond_dim: int) -> None:
        super().__init__()
        self.inp = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.film = FiLM(cond_dim, width)
        self.out = nn.Linear(width, width)
        self.act = nn.Mish()

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = h + self.out(self.act(self.film(self.norm(self.inp(h)), c)))
        return out


class FiLMMLPDenoiser(nn.Module):
    """`forward(x [B, H, A], t [B], cond [B, C], r [B] | None) -> [B, H, A]`.

    The chunk is flattened to `[B, H·A]`, lifted to `width`, passed through `depth` FiLM residual blocks
    conditioned on (time embedding, observation features) and projected back. The output layer starts at zero, so
    an untrained denoiser predicts 0 (no noise / no velocity), a calm start for every objective here.
    """

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        cond_dim: int,
        width: int = 256,
        depth: int = 3,
        cond_width: int = 128,
        time_dim: int = 64,
        time_scale: float = 1.0,
        two_times: bool = False,
    ) -> None:
        super().__init__()
        self.action_dim, self.horizon = action_dim, horizon
        self.encoder = TimeObsEncoder(cond_dim, cond_width, time_dim, time_scale, two_times)
        self.inp = nn.Linear(horizon * action_dim, width)
        self.blocks = nn.ModuleList([_FiLMBlock(width, cond_width) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, horizon * action_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, r: torch.Tensor | None = None
    ) -> torch.Tensor:
        c = self.encoder(t, cond, r)
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = block(h, c)
        out: torch.Tensor = self.out(torch.nn.functional.mish(self.norm(h)))
        return out.view(-1, self.horizon, self.action_dim)
