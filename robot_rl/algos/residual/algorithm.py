"""Residual TD3: critic → (after the warm-up, delayed) residual actor → targets, on the base-proposal view."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from robot_rl.algos import common
from robot_rl.algos.residual.config import ResidualConfig
from robot_rl.algos.residual.losses import combine
from robot_rl.algos.residual.policy import ResidualPolicy
from robot_rl.algos.td3 import losses
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.actors import DeterministicActor
from robot_rl.nets.critics import CriticEnsemble
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.residual.view import ProposalView


class ResidualTD3:
    """TD3 on a residual: observations are `[obs, a_base]` (`robot_rl.residual.proposals`), actions the executed
    (combined) ones, so the critic scores what the robot did and demonstrations need no inverting."""

    name = "residual"
    acts_during_warmup = True
    """The training loop's warm-up steps act with this learner (base + noisy zero residual), not uniform noise."""

    def __init__(self, spec: PolicySpec, cfg: ResidualConfig) -> None:
        self.spec, self.cfg = spec, cfg
        obs_dim, act_dim = spec.observation.dim, spec.action.dim
        if obs_dim <= act_dim:
            raise ValueError(
                f"residual: the observation ({obs_dim}) must hold the env's observation and the base's {act_dim}-value "
                "proposal (train through `robot-rl train residual`, which adds the proposal)"
            )
        self.act_dim = act_dim
        self.normalizer = ObsNormalizer(obs_dim, enabled=cfg.obs_normalization)
        self.actor = DeterministicActor(obs_dim, act_dim, cfg.actor_hidden)
        last = [m for m in self.actor.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(last.weight)  # residual 0 at the start: training begins exactly at the base's behaviour
        nn.init.zeros_(last.bias)
        self.critic = CriticEnsemble(
            obs_dim, act_dim, cfg.critic_hidden, ensemble_size=cfg.num_critics, norm=cfg.critic_norm
        )
        self.actor_target = common.TargetNetwork(self.actor)
        self.critic_target = common.TargetNetwork(self.critic)
        self.actor_opt = common.adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = common.adam(self.critic.parameters(), cfg.critic_lr)
        self._policy = ResidualPolicy(spec, self.normalizer, self.actor, cfg.residual_scale)
        self.num_updates = 0
        self.n_step, self.gamma = cfg.n_step, cfg.gamma  # the batches' n-step rows (`requested_nstep`)

    @staticmethod
    def data_view(cfg: ResidualConfig, env_id: str, seed: int) -> ProposalView:
        """How this learner sees the env: each observation followed by the base's proposal (the training loop
        wraps the training and evaluation envs with it and records the base's identity)."""
        return ProposalView(cfg.base, env_id, seed)

    def _base(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[..., -self.act_dim :]

    def _combined(self, obs: torch.Tensor, obs_norm: torch.Tensor, actor: nn.Module) -> torch.Tensor:
        return combine(self._base(obs), torch.tanh(actor(obs_norm)), self.cfg.residual_scale)

    @torch.inference_mode()
    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        x = torch.as_tensor(obs, dtype=torch.float32)
        residual = torch.tanh(self.actor(self.normalizer(x)))
        if not deterministic:
            residual = (residual + self.cfg.exploration_noise * torch.randn_like(residual)).clamp(-1.0, 1.0)
        return combine(self._base(x), residual, self.cfg.residual_scale).numpy()

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        self.normalizer.update(obs)

    def policy(self) -> ResidualPolicy:
        return self._policy

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        cfg = self.cfg
        critic_sum, actor_sum, actor_steps = torch.zeros(()), torch.zeros(()), 0
        for _ in range(cfg.utd_ratio):
            b = next(batches)
            with torch.no_grad():
                obs, next_obs = self.normalizer(b.obs), self.normalizer(b.next_obs)
                next_residual = losses.smoothed_target_action(
                    torch.tanh(self.actor_target.module(next_obs)), cfg.target_noise, cfg.target_noise_clip
                )
                next_action = combine(self._base(b.next_obs), next_residual, cfg.residual_scale)
                discount = b.discount if b.discount is not None else cfg.gamma  # γ^k on n-step rows
                target = losses.td_target(
                    b.reward, b.terminated, self.critic_target.module(next_obs, next_action), discount
                )
            loss_critic = losses.critic_loss(self.critic(obs, b.action), target)
            self.critic_opt.zero_grad(set_to_none=True)
            loss_critic.backward()
            self.critic_opt.step()
            self.num_updates += 1
            critic_sum += loss_critic.detach()

            if self.num_updates % cfg.policy_delay == 0:
                if self.num_updates > cfg.critic_warmup_updates:
                    self.critic.requires_grad_(False)  # the actor loss must not move the critic
                    loss_actor = losses.actor_loss(self.critic(obs, self._combined(b.obs, obs, self.actor)))
                    self.critic.requires_grad_(True)
                    self.actor_opt.zero_grad(set_to_none=True)
                    loss_actor.backward()
                    self.actor_opt.step()
                    self.actor_target.update(cfg.tau)
                    actor_sum += loss_actor.detach()
                    actor_steps += 1
                self.critic_target.update(cfg.tau)
        values = {"loss/critic": float(critic_sum) / cfg.utd_ratio}
        if actor_steps:
            values["loss/actor"] = float(actor_sum) / actor_steps
        return TrainingStats(values=values, num_updates=cfg.utd_ratio)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for prefix, module in self._modules().items():
            out.update(common.module_tensors(prefix, module))
        out.update(common.optimizer_tensors("actor", self.actor_opt))
        out.update(common.optimizer_tensors("critic", self.critic_opt))
        return out

    def state_meta(self) -> dict[str, Any]:
        return {
            "num_updates": self.num_updates,
            "optimizers": {
                "actor": common.optimizer_meta(self.actor_opt),
                "critic": common.optimizer_meta(self.critic_opt),
            },
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        for prefix, module in self._modules().items():
            common.load_module(prefix, module, tensors)
        common.load_optimizer("actor", self.actor_opt, tensors, meta["optimizers"]["actor"])
        common.load_optimizer("critic", self.critic_opt, tensors, meta["optimizers"]["critic"])
        self.num_updates = int(meta["num_updates"])

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "normalizer": self.normalizer,
            "actor_target": self.actor_target.module,
            "critic_target": self.critic_target.module,
        }
