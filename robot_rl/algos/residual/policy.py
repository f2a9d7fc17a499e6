"""The residual policy module over the proposal view: `[obs, a_base]` (raw) in, the physical executed action out."""

from __future__ import annotations

import torch
from torch import nn

from robot_rl.algos.residual.losses import combine
from robot_rl.core.specs import PolicySpec
from robot_rl.nets.deployable import physical_action_affine
from robot_rl.nets.normalizer import ObsNormalizer


class ResidualPolicy(nn.Module):
    """`obs [B, O + A]` (the observation, then the base's normalized proposal) → physical action `[B, A]`.

    Executed = `clip(a_base + scale · tanh(actor(normalize(obs))), -1, 1)` mapped to physical units by the spec's
    affine map. With the actor's zero-initialized last layer it returns exactly the base's proposal.
    """

    obs_history = 1
    chunk_size = 1
    noise_shape: tuple[int, ...] | None = None

    def __init__(self, spec: PolicySpec, normalizer: ObsNormalizer, actor: nn.Module, residual_scale: float) -> None:
        super().__init__()
        self.spec = spec
        self.normalizer = normalizer
        self.actor = actor
        self.residual_scale = float(residual_scale)
        self.act_dim = spec.action.dim
        scale, offset = physical_action_affine(spec)
        self.register_buffer("action_scale", scale)
        self.register_buffer("action_offset", offset)

    action_scale: torch.Tensor
    action_offset: torch.Tensor

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is not None:
            raise ValueError(f"ResidualPolicy is deterministic and takes no noise, got noise {tuple(noise.shape)}")
        base = obs[..., -self.act_dim :]
        residual = torch.tanh(self.actor(self.normalizer(obs)))
        return combine(base, residual, self.residual_scale) * self.action_scale + self.action_offset
