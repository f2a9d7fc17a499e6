"""The deployable-policy protocol: what `Algorithm.policy()` returns and what the exporter traces.

A deployable policy is a torch `nn.Module` holding only what runs on the robot (docs/architecture.md): the
observation normalizer, the actor or sampler, and the map to physical action units, all as buffers inside the
module, so the traced graph takes raw observations and returns physical actions (principle 6). One protocol covers

- plain policies: `obs [B, O] -> action [B, A]` (`obs_history == 1`, `chunk_size == 1`, `noise_shape is None`),
- policies on an observation history: `obs [B, T_o * O]` (the T_o most recent observations, oldest first,
  concatenated) when `obs_history == T_o > 1`,
- action-chunked policies: `-> actions [B, H, A]` when `chunk_size == H > 1`,
- samplers (diffusion, flow): the noise is an explicit input `noise [B, *noise_shape]`, never drawn inside the
  graph, so the exported model is deterministic (principle 7).

The numpy-side counterpart for runtimes is `robot_rl.core.types.Policy`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from robot_rl.core.robot import normalized_to_physical
from robot_rl.core.specs import PolicySpec


@runtime_checkable
class DeployablePolicy(Protocol):
    """A torch module: raw observations in, **physical** actions out (see the module docstring for shapes)."""

    spec: PolicySpec
    """Observation/action layout, physical action bounds and control rate."""
    obs_history: int
    """T_o: observations the forward conditions on (1 = the current one only)."""
    chunk_size: int
    """H: actions per forward (1 = a plain `[B, A]` output, >1 = `[B, H, A]`)."""
    noise_shape: tuple[int, ...] | None
    """Per-sample shape of the explicit noise input, or None when `forward` takes no noise."""

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """`obs [B, T_o*O]` (raw), `noise [B, *noise_shape]` or None → physical `[B, A]` or `[B, H, A]`."""
        ...

    def __call__(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor: ...

    def eval(self) -> Any:
        """Inference mode for dropout/normalization layers (nn.Module.eval)."""
        ...


def as_module(policy: DeployablePolicy) -> nn.Module:
    """`policy` as the `nn.Module` it must be (for copying, tracing, parameter checks).

    Raises:
        TypeError: `policy` is not an `nn.Module`.
    """
    if not isinstance(policy, nn.Module):
        raise TypeError(f"a deployable policy must be a torch nn.Module, got {type(policy).__name__}")
    return policy


def output_shape(policy: DeployablePolicy, batch: int) -> tuple[int, ...]:
    """The shape `policy` returns for a batch of `batch` observations: `[B, A]` or `[B, H, A]`."""
    act_dim = policy.spec.action.dim
    return (batch, act_dim) if policy.chunk_size == 1 else (batch, policy.chunk_size, act_dim)


def physical_action_affine(spec: PolicySpec) -> tuple[torch.Tensor, torch.Tensor]:
    """`(scale, offset)`, float32 `[A]`, with physical = normalized · scale + offset: the spec's affine map
    (`robot_rl.core.robot.normalized_to_physical`, the one place it is written) as tensors a policy module keeps
    as buffers. float32 like the graph's other tensors (numpy promotes the map's float scalars to float64, which
    would make an exported output double)."""
    low, high = spec.action.low_array, spec.action.high_array
    offset = normalized_to_physical(0.0, low, high)
    scale = normalized_to_physical(1.0, low, high) - offset
    return torch.as_tensor(scale, dtype=torch.float32), torch.as_tensor(offset, dtype=torch.float32)
