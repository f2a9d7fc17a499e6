"""The deployable policy module: raw observation in, physical action out, no critics.

This is the object that is exported to ONNX: normalization, the actor's mean, tanh squashing
and the affine map to physical bounds are all inside `forward`, so nothing downstream
re-implements them (docs/architecture.md).
"""

from __future__ import annotations

import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.nets.normalizer import ObsNormalizer


class TanhPolicy(nn.Module):
    """`obs [B, obs_dim]` (raw) → `action [B, act_dim]` (physical), deterministic.

    `trunk` maps normalized observations to the pre-tanh action mean. For SAC it is the mean
    head of the Gaussian actor; for TD3 and BC it is the deterministic actor without its final tanh.
    A plain `DeployablePolicy` (robot_rl/nets/deployable.py): no history, no chunk, no noise input.
    """

    obs_history = 1
    chunk_size = 1
    noise_shape: tuple[int, ...] | None = None

    def __init__(self, spec: PolicySpec, normalizer: ObsNormalizer, trunk: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.normalizer = normalizer
        self.trunk = trunk
        low = torch.tensor(spec.action.low, dtype=torch.float32)
        high = torch.tensor(spec.action.high, dtype=torch.float32)
        self.register_buffer("action_scale", (high - low) / 2.0)
        self.register_buffer("action_bias", (high + low) / 2.0)

    action_scale: torch.Tensor
    action_bias: torch.Tensor

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is not None:
            raise ValueError(f"TanhPolicy is deterministic and takes no noise, got noise {tuple(noise.shape)}")
        mean = self.trunk(self.normalizer(obs))
        return torch.tanh(mean) * self.action_scale + self.action_bias
