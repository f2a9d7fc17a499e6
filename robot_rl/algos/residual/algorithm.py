"""Residual TD3: critic → (after the warm-up, delayed) residual actor → targets, on the base-proposal view."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from robot_rl.algos import common
from robot_rl.algos.residual.config import ResidualConfig
from robot_rl.algos.residual.losses import anchored_actor_loss, combine
from robot_rl.algos.residual.policy import ResidualPolicy
from robot_rl.algos.residual.shell import ResidualShell
from robot_rl.algos.td3 import losses
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.actors import DeterministicActor


class ResidualTD3(ResidualShell):
    """TD3 on a residual: observations are `[obs, a_base]` (`robot_rl.residual.proposals`), actions the executed
    (combined) ones, so the critic scores what the robot did and demonstrations need no inverting."""

    name = "residual"

    def __init__(self, spec: PolicySpec, cfg: ResidualConfig) -> None:
        super().__init__(spec, cfg)
        self.actor = DeterministicActor(self.obs_dim, self.act_dim, cfg.actor_hidden)
        last = [m for m in self.actor.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(last.weight)  # residual 0 at the start: training begins exactly at the base's behaviour
        nn.init.zeros_(last.bias)
        self.actor_target = common.TargetNetwork(self.actor)
        self.actor_opt = common.adam(self.actor.parameters(), cfg.actor_lr)
        self._policy = ResidualPolicy(spec, self.normalizer, self.actor, cfg.residual_scale)

    @torch.inference_mode()
    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        x = torch.as_tensor(obs, dtype=torch.float32)
        residual = torch.tanh(self.actor(self.normalizer(x)))
        if not deterministic:
            residual = (residual + self.cfg.exploration_noise * torch.randn_like(residual)).clamp(-1.0, 1.0)
        return combine(self.base_action(x), residual, self.cfg.residual_scale).cpu().numpy()

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
                next_action = combine(self.base_action(b.next_obs), next_residual, cfg.residual_scale)
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
                    residual = torch.tanh(self.actor(obs))
                    action_pi = combine(self.base_action(b.obs), residual, cfg.residual_scale)
                    self.critic.requires_grad_(False)  # the actor loss must not move the critic
                    q_pi = self.critic(obs, action_pi)
                    loss_actor = anchored_actor_loss(losses.actor_loss(q_pi), q_pi, residual, cfg.residual_l2)
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

    def _modules(self) -> dict[str, nn.Module]:
        return {**super()._modules(), "actor": self.actor, "actor_target": self.actor_target.module}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super()._optimizers(), "actor": self.actor_opt}
