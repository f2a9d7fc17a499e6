"""Diffusion update: draw (t, ε), one DDPM regression step; the policy samples with DDIM (EMA weights)."""

from __future__ import annotations

import torch

from robot_rl.algos.chunked.learner import ChunkedLearner
from robot_rl.algos.diffusion import losses
from robot_rl.algos.diffusion.config import DiffusionConfig
from robot_rl.core.specs import PolicySpec
from robot_rl.nets.generative.samplers import ChunkSampler
from robot_rl.nets.generative.schedules import alphas_cumprod, squared_cosine_betas


class Diffusion(ChunkedLearner):
    """Diffusion Policy on action chunks: DDPM training (T steps), DDIM sampling (K steps)."""

    name = "diffusion"

    def __init__(self, spec: PolicySpec, cfg: DiffusionConfig) -> None:
        with torch.device("cpu"):  # a constant table: the sampler keeps it as host floats
            host_alphas_bar = alphas_cumprod(squared_cosine_betas(cfg.num_train_steps))
        # training indexes it per row, on the learner's device (`robot_rl.train.device`)
        self.alphas_bar = host_alphas_bar.to(torch.get_default_device())
        sampler = ChunkSampler("ddim", cfg.sampler_steps, host_alphas_bar, cfg.prediction, cfg.clip_sample)
        # The denoiser sees the integer step itself (0 … T-1), so no time scaling.
        super().__init__(spec, cfg, sampler, time_scale=1.0, two_times=False)
        self.dcfg = cfg

    def loss(self, x0: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t = torch.randint(0, self.dcfg.num_train_steps, (x0.shape[0],))
        noise = torch.randn_like(x0)
        return losses.ddpm_loss(self.denoiser, x0, cond, noise, t, self.alphas_bar, self.dcfg.prediction), {}
