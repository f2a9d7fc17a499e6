"""SAC update: critic → actor → temperature → target, one screen per gradient step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.algos import common
from robot_rl.algos.compiled import MaybeCompiled
from robot_rl.algos.sac import losses
from robot_rl.algos.sac.config import SACConfig
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.actors import GaussianActor, GaussianMean
from robot_rl.nets.critics import CriticEnsemble
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.nets.policy import TanhPolicy


class SAC:
    """Soft Actor-Critic with a batched critic ensemble and automatic temperature."""

    name = "sac"

    def __init__(self, spec: PolicySpec, cfg: SACConfig) -> None:
        self.spec, self.cfg = spec, cfg
        obs_dim, act_dim = spec.observation.dim, spec.action.dim
        self.normalizer = ObsNormalizer.with_std_floor(obs_dim, cfg.obs_normalization, cfg.obs_std_floor)
        self.actor = GaussianActor(
            obs_dim, act_dim, cfg.actor_hidden, log_std_min=cfg.log_std_min, log_std_max=cfg.log_std_max
        )
        self.critic = CriticEnsemble(
            obs_dim,
            act_dim,
            cfg.critic_hidden,
            ensemble_size=cfg.num_critics,
            norm=cfg.critic_norm,
            renorm_warmup_steps=cfg.renorm_warmup_steps,
        )
        self.critic_target = common.TargetNetwork(self.critic) if cfg.use_target_network else None
        self.log_alpha = torch.tensor(float(np.log(cfg.init_alpha)), requires_grad=True)
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.actor_opt = common.adam(self.actor.parameters(), cfg.actor_lr, cfg.adam_beta1)
        self.critic_opt = common.adam(self.critic.parameters(), cfg.critic_lr, cfg.adam_beta1)
        self.alpha_opt = common.adam([self.log_alpha], cfg.alpha_lr, cfg.adam_beta1)
        self._critic_params = list(self.critic.parameters())
        self._policy = TanhPolicy(spec, self.normalizer, GaussianMean(self.actor))
        self.num_updates = 0
        # The pure parts of a gradient step (forward passes and losses), compiled when `compile_update` is on.
        self._critic_terms = MaybeCompiled(self._critic_terms_eager, "sac_critic", cfg.compile_update)
        self._actor_terms = MaybeCompiled(self._actor_terms_eager, "sac_actor", cfg.compile_update)

    # --- acting (data collection) ---

    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = common.gaussian_act(self.normalizer, self.actor, obs, deterministic)
        return out

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        self.normalizer.update(obs)

    def policy(self) -> TanhPolicy:
        return self._policy

    # --- learning ---

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        cfg = self.cfg
        sums: dict[str, Any] = {}
        actor_steps = 0
        for _ in range(cfg.utd_ratio):
            b = next(batches)
            alpha = self.log_alpha.detach().exp()

            # 1. critic
            loss_critic, q_mean, obs = self._critic_terms(b.obs, b.action, b.reward, b.terminated, b.next_obs, alpha)
            self.critic_opt.zero_grad(set_to_none=True)
            loss_critic.backward()
            self.critic_opt.step()
            self.num_updates += 1
            _acc(sums, "loss/critic", loss_critic)
            _acc(sums, "q/mean", q_mean)

            # 2. actor and 3. temperature, every `policy_delay` critic steps
            if self.num_updates % cfg.policy_delay == 0:
                # Critic weights get no gradient from the actor loss (saves the weight-grad
                # matmuls); eval mode keeps batch-renorm statistics from moving.
                self.critic.requires_grad_(False)
                self.critic.eval()
                loss_actor, log_prob = self._actor_terms(obs, alpha)
                self.critic.train()
                self.critic.requires_grad_(True)
                self.actor_opt.zero_grad(set_to_none=True)
                loss_actor.backward()
                self.actor_opt.step()

                loss_alpha = losses.temperature_loss(self.log_alpha, log_prob, self.target_entropy)
                self.alpha_opt.zero_grad(set_to_none=True)
                loss_alpha.backward()
                self.alpha_opt.step()
                actor_steps += 1
                _acc(sums, "loss/actor", loss_actor.detach())
                _acc(sums, "loss/alpha", loss_alpha.detach())
                _acc(sums, "policy/entropy", -log_prob.detach().mean())

            # 4. target network
            if self.critic_target is not None:
                self.critic_target.update(cfg.tau)

        values = common.mean_stats(
            {k: v for k, v in sums.items() if k.startswith(("loss/critic", "q/"))}, cfg.utd_ratio
        )
        values.update(common.mean_stats({k: v for k, v in sums.items() if k not in values}, actor_steps))
        values["alpha"] = float(self.log_alpha.detach().exp())
        if cfg.compile_update:
            values.update(self._critic_terms.stats())
            values.update(self._actor_terms.stats())
        return TrainingStats(values=values, num_updates=cfg.utd_ratio)

    def _critic_terms_eager(
        self,
        obs_raw: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        terminated: torch.Tensor,
        next_obs_raw: torch.Tensor,
        alpha: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Critic loss (SAC eq. 5 against the soft TD target, eq. 3), mean Q and the normalized observations."""
        with torch.no_grad():
            obs = self.normalizer(obs_raw)
            next_obs = self.normalizer(next_obs_raw)
            next_action, next_log_prob = self.actor.sample(next_obs)
        if self.critic_target is not None:
            with torch.no_grad():
                next_q = self.critic_target.module(next_obs, next_action)
            q = self.critic(obs, action)
        else:
            # CrossQ: one forward over the joint batch so batch statistics cover both the
            # current and the next state-action distribution; the next half is the target.
            q_joint = self.critic(torch.cat([obs, next_obs]), torch.cat([action, next_action]))
            q, next_q = q_joint.split(obs.shape[0], dim=1)
            next_q = next_q.detach()
        target = losses.soft_td_target(reward, terminated, next_q, next_log_prob, alpha, self.cfg.gamma)
        return losses.critic_loss(q, target), q.detach().mean(), obs

    def _actor_terms_eager(self, obs: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actor loss (SAC eq. 7) on a reparameterized sample, and that sample's log-probability."""
        action_pi, log_prob = self.actor.sample(obs)
        q_pi = self.critic(obs, action_pi)
        return losses.actor_loss(q_pi, log_prob, alpha), log_prob

    # --- checkpointing ---

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        out.update(common.module_tensors("actor", self.actor))
        out.update(common.module_tensors("critic", self.critic))
        out.update(common.module_tensors("normalizer", self.normalizer))
        if self.critic_target is not None:
            out.update(common.module_tensors("critic_target", self.critic_target.module))
        out["log_alpha"] = self.log_alpha.detach().clone().reshape(1)
        for name, opt in self._optimizers().items():
            out.update(common.optimizer_tensors(name, opt))
        return out

    def state_meta(self) -> dict[str, Any]:
        return {
            "num_updates": self.num_updates,
            "optimizers": {n: common.optimizer_meta(o) for n, o in self._optimizers().items()},
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        common.load_module("actor", self.actor, tensors)
        common.load_module("critic", self.critic, tensors)
        common.load_module("normalizer", self.normalizer, tensors)
        if self.critic_target is not None:
            common.load_module("critic_target", self.critic_target.module, tensors)
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"].reshape(()))
        for name, opt in self._optimizers().items():
            common.load_optimizer(name, opt, tensors, meta["optimizers"][name])
        self.num_updates = int(meta["num_updates"])

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt, "alpha": self.alpha_opt}


def _acc(sums: dict[str, Any], key: str, value: torch.Tensor) -> None:
    sums[key] = sums.get(key, 0.0) + value.detach()
