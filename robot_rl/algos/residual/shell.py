"""What every residual learner shares: the proposal-view contract, the observation normalizer, the critic ensemble
on the executed action, n-step batches and checkpointing. The learners (`algorithm.py` TD3, `sac.py` SAC) add their
actor and update."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from robot_rl.algos import common
from robot_rl.algos.residual.config import ResidualConfig
from robot_rl.algos.residual.policy import ResidualPolicy
from robot_rl.core.specs import PolicySpec
from robot_rl.nets.critics import CriticEnsemble
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.residual.view import ProposalView


class ResidualShell:
    """Shared state of a residual learner on observations `[obs, a_base]` (see `robot_rl.residual.proposals`)."""

    acts_during_warmup = True
    """The training loop's warm-up steps act with this learner (base + noisy zero residual), not uniform noise."""
    _policy: ResidualPolicy

    def __init__(self, spec: PolicySpec, cfg: ResidualConfig) -> None:
        self.spec, self.cfg = spec, cfg
        obs_dim, act_dim = spec.observation.dim, spec.action.dim
        if obs_dim <= act_dim:
            raise ValueError(
                f"residual: the observation ({obs_dim}) must hold the env's observation and the base's {act_dim}-value "
                "proposal (train through `robot-rl train residual`, which adds the proposal)"
            )
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.normalizer = ObsNormalizer.with_std_floor(obs_dim, cfg.obs_normalization, cfg.obs_std_floor)
        self.critic = CriticEnsemble(
            obs_dim, act_dim, cfg.critic_hidden, ensemble_size=cfg.num_critics, norm=cfg.critic_norm
        )
        self.critic_target = common.TargetNetwork(self.critic)
        self.critic_opt = common.adam(self.critic.parameters(), cfg.critic_lr)
        self.num_updates = 0
        self.n_step, self.gamma = cfg.n_step, cfg.gamma  # the batches' n-step rows (`requested_layout`)

    @staticmethod
    def data_view(cfg: ResidualConfig, env_id: str, seed: int) -> ProposalView:
        """How this learner sees the env: each observation followed by the base's proposal (the training loop
        wraps the training and evaluation envs with it, replays datasets through it and records the base)."""
        return ProposalView(cfg.base, env_id, seed)

    def base_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The proposal part `[..., A]` of raw observations `[..., O + A]`."""
        return obs[..., -self.act_dim :]

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        self.normalizer.update(obs)

    def policy(self) -> ResidualPolicy:
        return self._policy

    def _modules(self) -> dict[str, nn.Module]:
        return {"critic": self.critic, "normalizer": self.normalizer, "critic_target": self.critic_target.module}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.critic_opt}

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def _load_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what `_extra_tensors` saved."""

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for prefix, module in self._modules().items():
            out.update(common.module_tensors(prefix, module))
        for name, opt in self._optimizers().items():
            out.update(common.optimizer_tensors(name, opt))
        out.update(self._extra_tensors())
        return out

    def state_meta(self) -> dict[str, Any]:
        return {
            "num_updates": self.num_updates,
            "optimizers": {name: common.optimizer_meta(opt) for name, opt in self._optimizers().items()},
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        for prefix, module in self._modules().items():
            common.load_module(prefix, module, tensors)
        for name, opt in self._optimizers().items():
            common.load_optimizer(name, opt, tensors, meta["optimizers"][name])
        self._load_extra(tensors)
        self.num_updates = int(meta["num_updates"])
