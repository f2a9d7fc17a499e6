"""TD3 update: critic → (delayed) actor → targets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.algos import common
from robot_rl.algos.td3 import losses
from robot_rl.algos.td3.config import TD3Config
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.actors import DeterministicActor
from robot_rl.nets.critics import CriticEnsemble
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.nets.policy import TanhPolicy


class TD3:
    """Twin Delayed DDPG with the same critic ensemble, normalizer and policy module as SAC."""

    name = "td3"

    def __init__(self, spec: PolicySpec, cfg: TD3Config) -> None:
        self.spec, self.cfg = spec, cfg
        obs_dim, act_dim = spec.observation.dim, spec.action.dim
        self.normalizer = ObsNormalizer.with_std_floor(obs_dim, cfg.obs_normalization, cfg.obs_std_floor)
        self.actor = DeterministicActor(obs_dim, act_dim, cfg.actor_hidden)
        self.critic = CriticEnsemble(obs_dim, act_dim, cfg.critic_hidden, ensemble_size=cfg.num_critics)
        self.actor_target = common.TargetNetwork(self.actor)
        self.critic_target = common.TargetNetwork(self.critic)
        self.actor_opt = common.adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = common.adam(self.critic.parameters(), cfg.critic_lr)
        self._policy = TanhPolicy(spec, self.normalizer, self.actor)
        self.num_updates = 0

    @torch.inference_mode()
    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        a = torch.tanh(self.actor(self.normalizer(torch.as_tensor(obs, dtype=torch.float32))))
        if not deterministic:
            a = (a + self.cfg.exploration_noise * torch.randn_like(a)).clamp(-1.0, 1.0)
        return a.cpu().numpy()

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        self.normalizer.update(obs)

    def policy(self) -> TanhPolicy:
        return self._policy

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        cfg = self.cfg
        critic_sum, actor_sum, actor_steps = torch.zeros(()), torch.zeros(()), 0
        for _ in range(cfg.utd_ratio):
            b = next(batches)
            with torch.no_grad():
                obs, next_obs = self.normalizer(b.obs), self.normalizer(b.next_obs)
                next_action = losses.smoothed_target_action(
                    torch.tanh(self.actor_target.module(next_obs)), cfg.target_noise, cfg.target_noise_clip
                )
                target = losses.td_target(
                    b.reward, b.terminated, self.critic_target.module(next_obs, next_action), cfg.gamma
                )
            loss_critic = losses.critic_loss(self.critic(obs, b.action), target)
            self.critic_opt.zero_grad(set_to_none=True)
            loss_critic.backward()
            self.critic_opt.step()
            self.num_updates += 1
            critic_sum += loss_critic.detach()

            if self.num_updates % cfg.policy_delay == 0:
                self.critic.requires_grad_(False)
                loss_actor = losses.actor_loss(self.critic(obs, torch.tanh(self.actor(obs))))
                self.critic.requires_grad_(True)
                self.actor_opt.zero_grad(set_to_none=True)
                loss_actor.backward()
                self.actor_opt.step()
                self.actor_target.update(cfg.tau)
                self.critic_target.update(cfg.tau)
                actor_sum += loss_actor.detach()
                actor_steps += 1
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
