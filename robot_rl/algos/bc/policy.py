"""BC's deployable policy when it predicts action chunks or conditions on an observation history."""

from __future__ import annotations

import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.nets.deployable import physical_action_affine
from robot_rl.nets.normalizer import ObsNormalizer


class ChunkTanhPolicy(nn.Module):
    """`obs [B, T_o·O]` (raw, oldest first) → `actions [B, H, A]` (physical), deterministic; a `DeployablePolicy`.

    Each history slot is normalized with the same per-dimension statistics, the trunk maps the flattened
    `[B, T_o·O]` to `[B, H·A]` pre-tanh values, and `tanh` then the spec's affine map (scale and offset from
    `robot_rl.core.robot.normalized_to_physical`) give physical actions, as `TanhPolicy` does for one action.
    """

    noise_shape: tuple[int, ...] | None = None

    def __init__(self, spec: PolicySpec, normalizer: ObsNormalizer, trunk: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.obs_history, self.chunk_size = spec.obs_history, spec.chunk_size
        self.normalizer = normalizer
        self.trunk = trunk
        scale, offset = physical_action_affine(spec)
        self.register_buffer("action_scale", scale)
        self.register_buffer("action_bias", offset)

    action_scale: torch.Tensor
    action_bias: torch.Tensor

    def normalized(self, obs: torch.Tensor) -> torch.Tensor:
        """The chunk in normalized units `[B, H, A]` ⊂ (-1, 1)."""
        hist = obs.reshape(obs.shape[0], self.obs_history, self.spec.observation.dim)
        pre = self.trunk(self.normalizer(hist).flatten(1))
        return torch.tanh(pre).view(-1, self.chunk_size, self.spec.action.dim)

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is not None:
            raise ValueError(f"ChunkTanhPolicy is deterministic and takes no noise, got noise {tuple(noise.shape)}")
        return self.normalized(obs) * self.action_scale + self.action_bias
