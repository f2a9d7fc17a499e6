"""Pieces shared by the off-policy algorithms: optimizer state (de)serialization, polyak updates."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

_FUSED_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[torch.Tensor], lr: float, beta1: float = 0.9) -> torch.optim.Adam:
    """Adam with the fused kernel (one call per step instead of one per tensor) on the CPU and CUDA."""
    params = list(params)
    # fused where the device has the kernel (CPU and CUDA do); elsewhere torch picks its default implementation
    fused = all(p.device.type in _FUSED_DEVICES for p in params) or None
    return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), fused=fused)


class TargetNetwork:
    """A frozen copy of a module, updated by polyak averaging `θ' ← (1 - τ) θ' + τ θ`."""

    def __init__(self, source: nn.Module) -> None:
        self.module = copy.deepcopy(source).requires_grad_(False)
        self._src: list[torch.Tensor] = list(source.parameters())
        self._dst: list[torch.Tensor] = list(self.module.parameters())

    @torch.no_grad()
    def update(self, tau: float) -> None:
        torch._foreach_lerp_(self._dst, self._src, tau)


def optimizer_tensors(name: str, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Flatten an optimizer's per-parameter state into `optim/<name>/<idx>/<key>` tensors."""
    out: dict[str, torch.Tensor] = {}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"optim/{name}/{idx}/{key}"] = torch.as_tensor(value).detach().clone()
    return out


def optimizer_meta(opt: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """The optimizer's param groups (hyperparameters and parameter indices), JSON-serializable."""
    groups = opt.state_dict()["param_groups"]
    return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in groups]


def load_optimizer(
    name: str, opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], groups: list[dict[str, Any]]
) -> None:
    """Restore an optimizer from `optimizer_tensors` + `optimizer_meta` output."""
    prefix = f"optim/{name}/"
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix) :].split("/", 1)
            state.setdefault(int(idx), {})[field] = value.clone()
    fixed = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in groups]
    opt.load_state_dict({"state": state, "param_groups": fixed})


def module_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict with a name prefix, detached and contiguous."""
    return {f"{prefix}/{k}": v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def load_module(prefix: str, module: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Load a prefixed state dict written by `module_tensors` (strict)."""
    p = prefix + "/"
    module.load_state_dict({k[len(p) :]: v for k, v in tensors.items() if k.startswith(p)}, strict=True)


@torch.inference_mode()
def gaussian_act(normalizer: nn.Module, actor: Any, obs: Any, deterministic: bool) -> Any:
    """Normalized action(s) `[A]`/`[N, A]` of a tanh-Gaussian actor (`robot_rl.nets.actors.GaussianActor`) for raw
    observation(s) `[O]`/`[N, O]`: its tanh(mean) when `deterministic`, else a sample (SAC's and LAC's `act`)."""
    x = normalizer(torch.as_tensor(obs, dtype=torch.float32))
    if deterministic:
        return actor.deterministic(x).cpu().numpy()
    a, _ = actor.sample(x if x.dim() == 2 else x.unsqueeze(0))
    return a.reshape(*x.shape[:-1], a.shape[-1]).cpu().numpy()


def mean_stats(sums: Mapping[str, torch.Tensor | float], n: int) -> dict[str, float]:
    """Average accumulated scalars over `n` steps (one `.item()` per metric per call)."""
    return {k: float(v) / max(n, 1) for k, v in sums.items()}
