"""Residual SAC: critic → residual actor and temperature (after the critic warm-up) → target, on the
base-proposal view. The entropy is the residual's: the base's own action is never randomized."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from robot_rl.algos import common
from robot_rl.algos.residual.config import ResidualSACConfig
from robot_rl.algos.residual.losses import anchored_actor_loss, combine
from robot_rl.algos.residual.policy import ResidualPolicy
from robot_rl.algos.residual.shell import ResidualShell
from robot_rl.algos.sac import losses
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.actors import GaussianActor, GaussianMean


class ResidualSAC(ResidualShell):
    """SAC on a residual (see `ResidualTD3` for the observation and action convention)."""

    name = "residual_sac"

    def __init__(self, spec: PolicySpec, cfg: ResidualSACConfig) -> None:
        super().__init__(spec, cfg)
        self.scfg = cfg
        self.actor = GaussianActor(self.obs_dim, self.act_dim, cfg.actor_hidden)
        with torch.no_grad():  # mean 0 (the base's action exactly), a small fixed initial spread
            nn.init.zeros_(self.actor.head.weight)
            self.actor.head.bias[: self.act_dim].zero_()
            self.actor.head.bias[self.act_dim :].fill_(cfg.init_log_std)
        self.log_alpha = torch.tensor(float(np.log(cfg.init_alpha)), requires_grad=True)
        self.target_entropy = float(-self.act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.actor_opt = common.adam(self.actor.parameters(), cfg.actor_lr)
        self.alpha_opt = common.adam([self.log_alpha], cfg.alpha_lr)
        self._policy = ResidualPolicy(spec, self.normalizer, GaussianMean(self.actor), cfg.residual_scale)

    @torch.inference_mode()
    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        x = torch.as_tensor(obs, dtype=torch.float32)
        xn = self.normalizer(x)
        if deterministic:
            residual = self.actor.deterministic(xn)
        else:
            flat = xn if xn.dim() == 2 else xn.unsqueeze(0)
            residual = self.actor.sample(flat)[0].reshape(*xn.shape[:-1], self.act_dim)
        return combine(self.base_action(x), residual, self.cfg.residual_scale).cpu().numpy()

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        cfg = self.scfg
        sums: dict[str, torch.Tensor] = {}
        actor_steps = 0
        for _ in range(cfg.utd_ratio):
            b = next(batches)
            alpha = self.log_alpha.detach().exp()
            with torch.no_grad():
                obs, next_obs = self.normalizer(b.obs), self.normalizer(b.next_obs)
                next_residual, next_log_prob = self.actor.sample(next_obs)
                next_action = combine(self.base_action(b.next_obs), next_residual, cfg.residual_scale)
                discount = b.discount if b.discount is not None else cfg.gamma  # γ^k on n-step rows
                target = losses.soft_td_target(
                    b.reward,
                    b.terminated,
                    self.critic_target.module(next_obs, next_action),
                    next_log_prob,
                    alpha,
                    discount,
                )
            loss_critic = losses.critic_loss(self.critic(obs, b.action), target)
            self.critic_opt.zero_grad(set_to_none=True)
            loss_critic.backward()
            self.critic_opt.step()
            self.num_updates += 1
            _acc(sums, "loss/critic", loss_critic)

            if self.num_updates > cfg.critic_warmup_updates:
                residual, log_prob = self.actor.sample(obs)
                action_pi = combine(self.base_action(b.obs), residual, cfg.residual_scale)
                self.critic.requires_grad_(False)  # the actor loss must not move the critic
                q_pi = self.critic(obs, action_pi)
                loss_actor = anchored_actor_loss(
                    losses.actor_loss(q_pi, log_prob, alpha), q_pi, residual, cfg.residual_l2
                )
                self.critic.requires_grad_(True)
                self.actor_opt.zero_grad(set_to_none=True)
                loss_actor.backward()
                self.actor_opt.step()
                loss_alpha = losses.temperature_loss(self.log_alpha, log_prob, self.target_entropy)
                self.alpha_opt.zero_grad(set_to_none=True)
                loss_alpha.backward()
                self.alpha_opt.step()
                actor_steps += 1
                _acc(sums, "loss/actor", loss_actor)
                _acc(sums, "policy/entropy", -log_prob.mean())
            self.critic_target.update(cfg.tau)
        values = {"loss/critic": float(sums["loss/critic"]) / cfg.utd_ratio}
        for key in ("loss/actor", "policy/entropy"):
            if actor_steps:
                values[key] = float(sums[key]) / actor_steps
        values["alpha"] = float(self.log_alpha.detach().exp())
        return TrainingStats(values=values, num_updates=cfg.utd_ratio)

    def _modules(self) -> dict[str, nn.Module]:
        return {**super()._modules(), "actor": self.actor}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super()._optimizers(), "actor": self.actor_opt, "alpha": self.alpha_opt}

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        return {"log_alpha": self.log_alpha.detach().clone().reshape(1)}

    def _load_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"].reshape(()))


def _acc(sums: dict[str, Any], key: str, value: torch.Tensor) -> None:
    sums[key] = sums.get(key, 0.0) + value.detach()
