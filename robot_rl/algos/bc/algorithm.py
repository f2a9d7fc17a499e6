"""BC update: one regression step per batch; the deployable policy is a TanhPolicy over the same actor (a
ChunkTanhPolicy when the config asks for action chunks or an observation history)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.algos import common
from robot_rl.algos.bc import losses
from robot_rl.algos.bc.config import BCConfig
from robot_rl.algos.bc.policy import ChunkTanhPolicy
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.actors import DeterministicActor
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.nets.policy import TanhPolicy


class BC:
    """Deterministic behaviour cloning: `tanh(actor(normalize(obs)))` regresses the batch's normalized action.

    With `chunk_size` H > 1 or `obs_history` T_o > 1 the actor maps the normalized history `[B, T_o·O]` to the
    chunk `[B, H·A]` and regresses `Batch.action_chunk` (which the driver fills because this object's
    `chunk_size`/`obs_history` say so); with both 1 everything is as it was.
    """

    name = "bc"

    def __init__(self, spec: PolicySpec, cfg: BCConfig) -> None:
        self.spec, self.cfg = spec, cfg
        self.chunk_size, self.obs_history = cfg.chunk_size, cfg.obs_history
        self.chunked = cfg.chunk_size > 1 or cfg.obs_history > 1
        obs_dim, act_dim = spec.observation.dim, spec.action.dim
        self.normalizer = ObsNormalizer.with_std_floor(obs_dim, cfg.obs_normalization, cfg.obs_std_floor)
        self.actor = DeterministicActor(obs_dim * cfg.obs_history, act_dim * cfg.chunk_size, cfg.actor_hidden)
        self.opt = torch.optim.AdamW(self.actor.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._chunk_policy: ChunkTanhPolicy | None = None
        self._policy: TanhPolicy | ChunkTanhPolicy
        if self.chunked:
            horizon = cfg.execution_horizon or cfg.chunk_size
            chunk_spec = dataclasses.replace(
                spec, chunk_size=cfg.chunk_size, execution_horizon=horizon, obs_history=cfg.obs_history
            )
            self._policy = self._chunk_policy = ChunkTanhPolicy(chunk_spec, self.normalizer, self.actor)
        else:
            self._policy = TanhPolicy(spec, self.normalizer, self.actor)
        self.num_updates = 0

    @torch.inference_mode()
    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        if self._chunk_policy is not None:  # stateless: the history is `obs` repeated, the chunk's first action
            x = torch.as_tensor(np.atleast_2d(obs), dtype=torch.float32).repeat(1, self.obs_history)
            a = self._chunk_policy.normalized(x)[:, 0]
            a = a[0] if np.ndim(obs) == 1 else a
        else:
            a = torch.tanh(self.actor(self.normalizer(torch.as_tensor(obs, dtype=torch.float32))))
        if not deterministic and self.cfg.exploration_noise > 0:
            a = (a + self.cfg.exploration_noise * torch.randn_like(a)).clamp(-1.0, 1.0)
        return a.cpu().numpy()

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        self.normalizer.update(obs)

    def policy(self) -> TanhPolicy | ChunkTanhPolicy:
        return self._policy

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        b = next(batches)
        if self._chunk_policy is not None:
            if b.action_chunk is None or b.obs_history is None:
                raise ValueError(
                    f"bc with chunk_size {self.chunk_size} / obs_history {self.obs_history} needs "
                    "Batch.action_chunk and Batch.obs_history (the training driver fills them)"
                )
            pred = self._chunk_policy.normalized(b.obs_history.flatten(1)).flatten(1)
            target = b.action_chunk.flatten(1)
        else:
            with torch.no_grad():
                obs = self.normalizer(b.obs)
            pred, target = torch.tanh(self.actor(obs)), b.action
        loss = losses.bc_loss(pred, target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.num_updates += 1
        return TrainingStats(values={"loss/bc": float(loss.detach())}, num_updates=1)

    # --- checkpointing (same layout as SAC/TD3: prefixed modules + flattened optimizer state) ---

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        out.update(common.module_tensors("actor", self.actor))
        out.update(common.module_tensors("normalizer", self.normalizer))
        out.update(common.optimizer_tensors("actor", self.opt))
        return out

    def state_meta(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates, "optimizers": {"actor": common.optimizer_meta(self.opt)}}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        common.load_module("actor", self.actor, tensors)
        common.load_module("normalizer", self.normalizer, tensors)
        common.load_optimizer("actor", self.opt, tensors, meta["optimizers"]["actor"])
        self.num_updates = int(meta["num_updates"])
