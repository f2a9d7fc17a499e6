"""MeanFlow update: draw (r ≤ t, ε), one step on the JVP-target loss; the policy samples in 1 (or K) steps."""

from __future__ import annotations

import torch

from robot_rl.algos.chunked.learner import ChunkedLearner
from robot_rl.algos.flow.times import sample_times
from robot_rl.algos.meanflow import losses
from robot_rl.algos.meanflow.config import MeanFlowConfig
from robot_rl.core.specs import PolicySpec
from robot_rl.nets.generative.samplers import ChunkSampler


class MeanFlow(ChunkedLearner):
    """MeanFlow on action chunks: the denoiser embeds (t, t − r) and predicts the average velocity over [r, t]."""

    name = "meanflow"

    def __init__(self, spec: PolicySpec, cfg: MeanFlowConfig) -> None:
        sampler = ChunkSampler("meanflow", cfg.sampler_steps)
        super().__init__(spec, cfg, sampler, time_scale=cfg.time_scale, two_times=True)
        self.mcfg = cfg

    def sample_interval(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`(t, r)`, each `[n]`: two draws sorted so r ≤ t, then r = t on an `equal_fraction` of the rows."""
        c = self.mcfg
        a = sample_times(n, c.time_sampling, c.logit_mean, c.logit_std)
        b = sample_times(n, c.time_sampling, c.logit_mean, c.logit_std)
        t, r = torch.maximum(a, b), torch.minimum(a, b)
        equal = torch.rand(n) < c.equal_fraction
        return t, torch.where(equal, t, r)

    def loss(self, x0: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t, r = self.sample_interval(x0.shape[0])
        c = self.mcfg
        loss, mse = losses.meanflow_loss(
            self.denoiser, x0, cond, torch.randn_like(x0), t, r, c.adaptive_power, c.adaptive_eps, c.tangent
        )
        return loss, {"loss/meanflow_mse": mse}
