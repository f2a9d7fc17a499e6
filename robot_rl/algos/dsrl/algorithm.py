"""DSRL = SAC on the noise-space view of a frozen generative base (the update is SAC's, unchanged)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.residual.noise_space import NoiseSpaceView


@dataclass(frozen=True)
class DSRLConfig(SACConfig):
    """SAC choosing the initial noise of a frozen generative chunk policy (its action: the noise `[H·A]`, one
    decision per executed chunk)."""

    base: str = ""
    """The frozen generative base: a bundle or training-run directory of a diffusion, flow or MeanFlow policy."""
    noise_scale: float = 1.5
    """Largest |noise| the agent may choose per element (the base was trained on N(0, 1) noise: 1.5 keeps the
    choices where its sampler has seen noise, as DSRL bounds its latent actions)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.noise_scale) and self.noise_scale > 0):
            raise ValueError(f"invalid DSRLConfig: noise_scale must be positive and finite, got {self.noise_scale}")


class DSRL(SAC):
    """SAC whose env is `NoiseSpaceEnv` (the training loop wraps it through `data_view`)."""

    name = "dsrl"

    @staticmethod
    def data_view(cfg: DSRLConfig, env_id: str, seed: int) -> NoiseSpaceView:
        """The env one chunk at a time, steered through the base's noise."""
        if not cfg.base:
            raise ValueError("dsrl needs --base: a bundle or run directory of a diffusion, flow or MeanFlow policy")
        return NoiseSpaceView(cfg.base, env_id, seed, cfg.noise_scale)
