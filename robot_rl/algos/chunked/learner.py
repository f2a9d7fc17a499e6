"""The learner shell shared by diffusion, flow and meanflow: networks, normalizers, EMA, `update`, checkpoints.

Each method subclasses `ChunkedLearner` once and supplies `loss(x0, cond)` (its pure loss from its `losses.py`,
with the random draws it needs) and a configured `ChunkSampler`; everything else — what a batch means, the
optimizer step, the EMA, the deployable policy and checkpoint tensors — is here, written once.

Data the learner needs: `Batch.action_chunk [B, H, A]` and `Batch.obs_history [B, T_o, O]`. The driver fills them
because the learner exposes `chunk_size` and `obs_history` (`robot_rl.train.batches.requested_layout`); it also
calls `observe_actions` once with the dataset's actions so the action min-max range is the data's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.algos import common
from robot_rl.algos.chunked.config import ChunkedConfig
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.generative.chunk_policy import ChunkSamplerPolicy
from robot_rl.nets.generative.denoisers import make_denoiser
from robot_rl.nets.generative.ema import EMA
from robot_rl.nets.generative.normalizers import MinMaxNormalizer, make_obs_normalizer
from robot_rl.nets.generative.samplers import ChunkSampler


def chunked_spec(spec: PolicySpec, chunk_size: int, execution_horizon: int, obs_history: int) -> PolicySpec:
    """`spec` with the policy's H, H_a and T_o (the env's spec says 1, 0, 1)."""
    return dataclasses.replace(
        spec, chunk_size=chunk_size, execution_horizon=execution_horizon, obs_history=obs_history
    )


class ChunkedLearner:
    """A generative action-chunk learner; subclasses set `name` and implement `loss`."""

    name = "chunked"

    def __init__(
        self, spec: PolicySpec, cfg: ChunkedConfig, sampler: ChunkSampler, time_scale: float, two_times: bool
    ) -> None:
        self.cfg = cfg
        self.spec = chunked_spec(spec, cfg.chunk_size, cfg.execution_horizon, cfg.obs_history)
        self.chunk_size, self.obs_history = cfg.chunk_size, cfg.obs_history
        obs_dim, act_dim = spec.observation.dim, spec.action.dim
        self.obs_normalizer = make_obs_normalizer(cfg.obs_normalization, obs_dim, cfg.obs_std_floor)
        self.action_normalizer = MinMaxNormalizer(act_dim)
        self.denoiser = make_denoiser(
            cfg.denoiser,
            act_dim,
            cfg.chunk_size,
            cfg.obs_history * obs_dim,
            cfg.width,
            cfg.depth,
            cfg.unet_widths,
            cfg.cond_width,
            cfg.time_dim,
            time_scale,
            two_times,
        )
        self.ema = EMA(self.denoiser, cfg.ema_decay)
        self.opt = torch.optim.AdamW(self.denoiser.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._policy = ChunkSamplerPolicy(
            self.spec, self.obs_normalizer, self.action_normalizer, self.ema.module, sampler
        )
        self.num_updates = 0

    def loss(self, x0: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The method's training loss on normalized chunks `x0 [B, H, A]` given `cond [B, T_o·O]`, plus extra
        detached scalars to log."""
        raise NotImplementedError

    # --- the Algorithm protocol ---

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        x0, cond = self.training_pair(next(batches))
        loss, extra = self.loss(x0, cond)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.grad_clip_norm or float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.denoiser.parameters(), clip)
        self.opt.step()
        self.ema.update()
        self.num_updates += 1
        values = {f"loss/{self.name}": float(loss.detach()), "train/grad_norm": float(grad_norm)}
        values.update({k: float(v) for k, v in extra.items()})
        return TrainingStats(values=values, num_updates=1)

    def training_pair(self, b: Batch[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """`(x0 [B, H, A]` data-normalized chunk, `cond [B, T_o·O]` normalized history) from a batch.

        Raises:
            ValueError: the batch lacks the chunk or history this learner needs, or their shapes are wrong.
        """
        h, t_o = self.chunk_size, self.obs_history
        chunk = b.action_chunk if b.action_chunk is not None else (b.action[:, None] if h == 1 else None)
        hist = b.obs_history if b.obs_history is not None else (b.obs[:, None] if t_o == 1 else None)
        if chunk is None or hist is None:
            raise ValueError(
                f"{self.name} needs Batch.action_chunk [B, {h}, A] and Batch.obs_history [B, {t_o}, O]; the "
                "training driver fills them from the learner's chunk_size/obs_history (robot_rl.train.batches)"
            )
        act_dim, obs_dim = self.spec.action.dim, self.spec.observation.dim
        if chunk.shape[1:] != (h, act_dim) or hist.shape[1:] != (t_o, obs_dim) or chunk.shape[0] != hist.shape[0]:
            raise ValueError(
                f"{self.name}: action_chunk {tuple(chunk.shape)} / obs_history {tuple(hist.shape)} do not match "
                f"[B, {h}, {act_dim}] / [B, {t_o}, {obs_dim}]"
            )
        with torch.no_grad():
            return self.action_normalizer(chunk), self._policy.condition(hist.flatten(1))

    @torch.inference_mode()
    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        """The first action of a freshly sampled chunk, normalized, for raw `obs [O]` or `[N, O]`.

        Stateless on purpose (the online loop has no episode-start hook into the learner): the history is the
        current observation repeated T_o times and every call replans. Receding-horizon execution with a real
        history is what evaluation does, through `robot_rl.train.policy_actor.PolicyActor` on `policy()`.
        `deterministic` samples from zero noise, otherwise from standard normal noise.
        """
        single = np.ndim(obs) == 1
        x = torch.as_tensor(np.atleast_2d(obs), dtype=torch.float32)
        hist = x.repeat(1, self.obs_history)
        shape = (x.shape[0], self.chunk_size, self.spec.action.dim)
        noise = torch.zeros(shape) if deterministic else torch.randn(shape)
        first = self._policy.sample_normalized(hist, noise)[:, 0].cpu().numpy()
        out: npt.NDArray[np.float32] = first[0] if single else first
        return out

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        self.obs_normalizer.update(obs)

    def observe_actions(self, actions: npt.NDArray[np.float32]) -> None:
        """Fit the action min-max range to a dataset's normalized actions `[N, A]` (with `action_normalization =
        "data"`; the driver calls this once, before the first update)."""
        if self.cfg.action_normalization == "data":
            self.action_normalizer.update(actions)

    def policy(self) -> ChunkSamplerPolicy:
        """The EMA-weighted `ChunkSamplerPolicy` (shares the normalizers and EMA weights with the learner)."""
        return self._policy

    # --- checkpointing: prefixed modules + flattened optimizer state (same layout as SAC/TD3/BC) ---

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        out.update(common.module_tensors("denoiser", self.denoiser))
        out.update(common.module_tensors("ema", self.ema.module))
        out.update(common.module_tensors("obs_normalizer", self.obs_normalizer))
        out.update(common.module_tensors("action_normalizer", self.action_normalizer))
        out.update(common.optimizer_tensors("denoiser", self.opt))
        return out

    def state_meta(self) -> dict[str, Any]:
        return {
            "num_updates": self.num_updates,
            "ema_updates": self.ema.num_updates,
            "optimizers": {"denoiser": common.optimizer_meta(self.opt)},
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        common.load_module("denoiser", self.denoiser, tensors)
        common.load_module("ema", self.ema.module, tensors)
        common.load_module("obs_normalizer", self.obs_normalizer, tensors)
        common.load_module("action_normalizer", self.action_normalizer, tensors)
        common.load_optimizer("denoiser", self.opt, tensors, meta["optimizers"]["denoiser"])
        self.num_updates = int(meta["num_updates"])
        self.ema.num_updates = int(meta["ema_updates"])
