"""Flow update: draw (t, ε), one velocity-regression step; the policy integrates K Euler/midpoint steps (EMA)."""

from __future__ import annotations

import torch

from robot_rl.algos.chunked.learner import ChunkedLearner
from robot_rl.algos.flow import losses
from robot_rl.algos.flow.config import FlowConfig
from robot_rl.algos.flow.times import sample_times
from robot_rl.core.specs import PolicySpec
from robot_rl.nets.generative.samplers import ChunkSampler

TIME_SCALE = 1000.0
"""t ∈ [0, 1] is embedded as 1000·t, the range the sinusoidal frequencies suit (`SinusoidalEmbedding`)."""


class Flow(ChunkedLearner):
    """Rectified flow on action chunks."""

    name = "flow"

    def __init__(self, spec: PolicySpec, cfg: FlowConfig) -> None:
        sampler = ChunkSampler(f"flow_{cfg.sampler}", cfg.sampler_steps, prediction=cfg.prediction)
        super().__init__(spec, cfg, sampler, time_scale=TIME_SCALE, two_times=False)
        self.fcfg = cfg

    def loss(self, x0: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.fcfg
        t = sample_times(x0.shape[0], c.time_sampling, c.logit_mean, c.logit_std)
        return losses.flow_matching_loss(self.denoiser, x0, cond, torch.randn_like(x0), t, c.prediction), {}
