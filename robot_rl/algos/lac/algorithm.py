"""LAC update: Lyapunov critic → actor → temperature and multiplier → target, one screen per gradient step."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.algos import common
from robot_rl.algos.lac import losses
from robot_rl.algos.lac.config import LACConfig
from robot_rl.algos.lac.networks import LyapunovCritic, PhysicalLyapunov
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.actors import GaussianActor, GaussianMean
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.nets.policy import TanhPolicy


class LAC:
    """Lyapunov actor-critic: SAC's tanh-Gaussian actor trained against a sum-of-squares Lyapunov critic under
    the sampled decrease condition, with a log-space Lagrange multiplier and an automatic temperature.

    It minimizes the per-step `Batch.cost` (the env's `info["cost"]`), not the reward. The deployable policy is the
    actor's mean, exactly SAC's (`TanhPolicy` over `GaussianMean`), so it exports through the same path.
    """

    name = "lac"
    needs_cost = True
    """The online loop refuses an env that reports no `info["cost"]` (zeros would teach nothing)."""

    def __init__(self, spec: PolicySpec, cfg: LACConfig) -> None:
        self.spec, self.cfg = spec, cfg
        obs_dim, act_dim = spec.observation.dim, spec.action.dim
        self.cost_horizon = cfg.horizon  # asks the batches for `cost_sum` (robot_rl.train.batches.requested_layout)
        self.normalizer = ObsNormalizer.with_std_floor(obs_dim, cfg.obs_normalization, cfg.obs_std_floor)
        self.actor = GaussianActor(
            obs_dim, act_dim, cfg.actor_hidden, log_std_min=cfg.log_std_min, log_std_max=cfg.log_std_max
        )
        self.critic = LyapunovCritic(obs_dim, act_dim, cfg.critic_hidden, cfg.critic_features)
        self.critic_target = common.TargetNetwork(self.critic)
        self.log_alpha = torch.tensor(math.log(cfg.init_alpha), requires_grad=True)
        self.log_lambda = torch.tensor(math.log(cfg.init_lambda), requires_grad=True)
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.actor_opt = common.adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = common.adam(self.critic.parameters(), cfg.critic_lr)
        self.alpha_opt = common.adam([self.log_alpha], cfg.alpha_lr)
        self.lambda_opt = common.adam([self.log_lambda], cfg.lambda_lr)
        self._policy = TanhPolicy(spec, self.normalizer, GaussianMean(self.actor))
        self.num_updates = 0

    # --- acting (data collection) ---

    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = common.gaussian_act(self.normalizer, self.actor, obs, deterministic)
        return out

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        self.normalizer.update(obs)

    def policy(self) -> TanhPolicy:
        return self._policy

    def lyapunov_module(self) -> PhysicalLyapunov:
        """The Lyapunov critic in deployable units: `obs [B, O]` raw, `action [B, A]` physical → `L [B]` ≥ 0 (the
        exporter writes it as the bundle's `lyapunov.onnx`, next to the critic-free policy)."""
        return PhysicalLyapunov(self.spec, self.normalizer, self.critic)

    @property
    def lyapunov_alpha3(self) -> float:
        """α₃ the critic was trained with (recorded in the bundle's manifest)."""
        return float(self.cfg.alpha3)

    def multiplier(self) -> torch.Tensor:
        """λ = exp(log λ), clipped to `lambda_max` (a constant for the actor)."""
        return self.log_lambda.detach().exp().clamp(max=self.cfg.lambda_max)

    # --- learning ---

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        cfg = self.cfg
        sums: dict[str, torch.Tensor] = {}
        for _ in range(cfg.utd_ratio):
            b = next(batches)
            cost = _cost(b)
            alpha, lam = self.log_alpha.detach().exp(), self.multiplier()
            with torch.no_grad():
                obs, next_obs = self.normalizer(b.obs), self.normalizer(b.next_obs)

            # 1. Lyapunov critic towards the candidate: TD (eq. 8) or the finite-horizon cost sum (eq. 9)
            if cfg.horizon > 0:
                target = _cost_sum(b)
            else:
                with torch.no_grad():
                    next_action, _ = self.actor.sample(next_obs)
                    next_l = self.critic_target.module(next_obs, next_action)
                target = losses.lyapunov_td_target(cost, b.terminated, next_l, cfg.gamma)
            l_value = self.critic(obs, b.action)
            loss_critic = losses.critic_loss(l_value, target)
            self.critic_opt.zero_grad(set_to_none=True)
            loss_critic.backward()
            self.critic_opt.step()
            self.num_updates += 1

            # 2. actor: one forward over s and s' (log π at s, π(s') into the frozen critic; eqs. 11-12)
            action_pi, log_prob_pi = self.actor.sample(torch.cat([obs, next_obs]))
            log_prob = log_prob_pi[: obs.shape[0]]
            self.critic.requires_grad_(False)  # the actor loss must not move (or even reach) the critic
            next_l_pi = self.critic(next_obs, action_pi[obs.shape[0] :])
            self.critic.requires_grad_(True)
            violation = losses.lyapunov_violation(next_l_pi, l_value, cost, cfg.alpha3)
            loss_actor = losses.actor_loss(violation, log_prob, alpha, lam)
            self.actor_opt.zero_grad(set_to_none=True)
            loss_actor.backward()
            self.actor_opt.step()

            # 3. temperature and multiplier, each on its own log-space scalar
            loss_alpha = losses.temperature_loss(self.log_alpha, log_prob, self.target_entropy)
            self.alpha_opt.zero_grad(set_to_none=True)
            loss_alpha.backward()
            self.alpha_opt.step()
            loss_lambda = losses.lambda_loss(self.log_lambda, violation)
            self.lambda_opt.zero_grad(set_to_none=True)
            loss_lambda.backward()
            self.lambda_opt.step()
            with torch.no_grad():
                # No wind-up above the clip: log λ parked far beyond log(λ_max) would take many steps to come back
                # once the constraint holds, while λ itself could not grow anyway.
                self.log_lambda.clamp_(max=math.log(cfg.lambda_max))

            # 4. target critic
            self.critic_target.update(cfg.tau)

            v = violation.detach()
            for key, value in (
                ("loss/critic", loss_critic),
                ("loss/actor", loss_actor),
                ("loss/alpha", loss_alpha),
                ("loss/lambda", loss_lambda),
                ("lyapunov/value", l_value.mean()),
                ("lyapunov/violation", v.mean()),
                ("lyapunov/violated_fraction", (v > 0).float().mean()),
                ("policy/entropy", -log_prob.mean()),
                ("cost/mean", cost.mean()),
            ):
                sums[key] = sums.get(key, 0.0) + value.detach()

        values = common.mean_stats(sums, cfg.utd_ratio)
        values["alpha"] = float(self.log_alpha.detach().exp())
        values["lambda"] = float(self.multiplier())
        return TrainingStats(values=values, num_updates=cfg.utd_ratio)

    # --- checkpointing ---

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for prefix, module in self._modules().items():
            out.update(common.module_tensors(prefix, module))
        out["log_alpha"] = self.log_alpha.detach().clone().reshape(1)
        out["log_lambda"] = self.log_lambda.detach().clone().reshape(1)
        for name, opt in self._optimizers().items():
            out.update(common.optimizer_tensors(name, opt))
        return out

    def state_meta(self) -> dict[str, Any]:
        return {
            "num_updates": self.num_updates,
            "optimizers": {n: common.optimizer_meta(o) for n, o in self._optimizers().items()},
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        for prefix, module in self._modules().items():
            common.load_module(prefix, module, tensors)
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"].reshape(()))
            self.log_lambda.copy_(tensors["log_lambda"].reshape(()))
        for name, opt in self._optimizers().items():
            common.load_optimizer(name, opt, tensors, meta["optimizers"][name])
        self.num_updates = int(meta["num_updates"])

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "critic_target": self.critic_target.module,
            "normalizer": self.normalizer,
        }

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt, "alpha": self.alpha_opt, "lambda": self.lambda_opt}


def _cost(b: Batch[torch.Tensor]) -> torch.Tensor:
    if b.cost is None:
        raise ValueError("LAC minimizes the per-step cost, but the batch carries none (Batch.cost is None)")
    return b.cost


def _cost_sum(b: Batch[torch.Tensor]) -> torch.Tensor:
    if b.cost_sum is None:
        raise ValueError(
            "LAC with horizon > 0 needs Batch.cost_sum (the finite-horizon cost sums); batches from "
            "robot_rl.train.batches fill it when the learner's `cost_horizon` is set"
        )
    return b.cost_sum
