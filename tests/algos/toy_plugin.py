"""A toy algorithm registered from outside robot_rl: a linear actor pulled towards the batch's actions.

It exists to prove the plug-in seam: `robot-rl --plugin tests.algos.toy_plugin train toy ...` trains it,
checkpoints, resumes, exports and evaluates it without any edit to robot_rl.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from robot_rl.algos import common
from robot_rl.algos.registry import register_algorithm
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.nets.policy import TanhPolicy


@dataclass(frozen=True)
class ToyConfig:
    """Toy linear actor (a plug-in test algorithm)."""

    toy_lr: float = 1e-2
    """Learning rate of the linear actor (SGD)."""
    batch_size: int = 16
    """Transitions per update."""
    toy_noise: float = 0.3
    """Exploration noise std (normalized action units)."""

    def __post_init__(self) -> None:
        if self.toy_lr <= 0:
            raise ValueError(f"toy_lr must be positive, got {self.toy_lr}")


class ToyLinear:
    """`a = tanh(W obs + b)`, regressed onto the batch's actions (one SGD step per update)."""

    name = "toy"

    def __init__(self, spec: PolicySpec, cfg: ToyConfig) -> None:
        self.spec, self.cfg = spec, cfg
        self.linear = nn.Linear(spec.observation.dim, spec.action.dim)
        self.normalizer = ObsNormalizer(spec.observation.dim, enabled=False)
        self.opt = torch.optim.SGD(self.linear.parameters(), lr=cfg.toy_lr, momentum=0.9)
        self._policy = TanhPolicy(spec, self.normalizer, self.linear)
        self.num_updates = 0

    @torch.inference_mode()
    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        a = torch.tanh(self.linear(torch.as_tensor(obs, dtype=torch.float32)))
        if not deterministic:
            a = (a + self.cfg.toy_noise * torch.randn_like(a)).clamp(-1.0, 1.0)
        return a.numpy()

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        pass

    def policy(self) -> TanhPolicy:
        return self._policy

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        b = next(batches)
        loss = (torch.tanh(self.linear(b.obs)) - b.action).pow(2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        self.num_updates += 1
        return TrainingStats(values={"loss/toy": float(loss.detach())}, num_updates=1)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {**common.module_tensors("linear", self.linear), **common.optimizer_tensors("sgd", self.opt)}

    def state_meta(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates, "sgd": common.optimizer_meta(self.opt)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        common.load_module("linear", self.linear, tensors)
        common.load_optimizer("sgd", self.opt, tensors, meta["sgd"])
        self.num_updates = int(meta["num_updates"])


register_algorithm(
    "toy", ToyConfig, ToyLinear, presets={"default": ToyConfig, "calm": lambda: ToyConfig(toy_noise=0.05)}
)
