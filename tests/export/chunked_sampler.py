"""A tiny test-only chunked sampler: the shape of a flow-matching `DeployablePolicy`, without the training.

A small MLP "velocity field" `v(x, t, obs)` is integrated with K unrolled Euler steps from the explicit initial
noise `x0 [B, H, A]`; observation normalization and the map to physical bounds are buffers inside the module, so
`forward(obs [B, T_o*O], noise [B, H, A]) -> physical chunk [B, H, A]` is what the exporter traces. It stands in
for the real generative policies (robot_rl/nets/generative) so the export and runtime tests do not depend on them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec


def chunk_spec(
    chunk_size: int = 8,
    execution_horizon: int = 3,
    obs_history: int = 2,
    env_id: str = "Toy-v0",
    obs_dim: int = 4,
    low: tuple[float, ...] = (-1.0, -0.5),
    high: tuple[float, ...] = (1.0, 2.0),
) -> PolicySpec:
    """Observation of `obs_dim` (two named entries when it is 4), asymmetric action bounds."""
    keys, shapes = (("pos", "goal"), ((2,), (2,))) if obs_dim == 4 else (("observation",), ((obs_dim,),))
    return PolicySpec(
        observation=ObservationSpec(keys=keys, shapes=shapes),
        action=ActionSpec(low=low, high=high, names=tuple(f"j{i}" for i in range(len(low))), units="rad"),
        control_hz=20.0,
        chunk_size=chunk_size,
        execution_horizon=execution_horizon,
        obs_history=obs_history,
        env_id=env_id,
    )


class EulerChunkSampler(nn.Module):
    """`x_{k+1} = x_k + v(x_k, k/K, obs) / K` for K steps from `x_0 = noise`; actions `center + half * tanh(x_K)`."""

    sampler_kind = "flow"
    obs_mean: torch.Tensor
    obs_std: torch.Tensor
    act_center: torch.Tensor
    act_half: torch.Tensor

    def __init__(self, spec: PolicySpec, steps: int = 4, hidden: int = 32, seed: int = 0, noise: bool = True) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.spec = spec
        self.obs_history = spec.obs_history
        self.chunk_size = spec.chunk_size
        self.sampler_steps = steps
        self.takes_noise = noise
        self.noise_shape: tuple[int, ...] | None = (spec.chunk_size, spec.action.dim) if noise else None
        in_dim = spec.obs_history * spec.observation.dim
        self.width = spec.chunk_size * spec.action.dim
        self.register_buffer("obs_mean", torch.linspace(-0.5, 0.5, in_dim))
        self.register_buffer("obs_std", torch.linspace(0.5, 2.0, in_dim))
        low = torch.tensor(spec.action.low, dtype=torch.float32)
        high = torch.tensor(spec.action.high, dtype=torch.float32)
        self.register_buffer("act_center", (high + low) / 2)
        self.register_buffer("act_half", (high - low) / 2)
        self.velocity = nn.Sequential(
            nn.Linear(in_dim + self.width + 1, hidden), nn.Tanh(), nn.Linear(hidden, self.width)
        )

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        batch = obs.shape[0]
        cond = (obs - self.obs_mean) / self.obs_std
        if noise is None:  # a deterministic chunked policy (no noise input): start from zeros
            x = torch.zeros_like(cond[:, :1]).expand(batch, self.width)
        else:
            x = noise.reshape(batch, self.width)
        dt = 1.0 / self.sampler_steps
        for k in range(self.sampler_steps):  # unrolled in the traced graph: K is fixed per export
            t = torch.zeros_like(cond[:, :1]) + k * dt
            x = x + dt * self.velocity(torch.cat([cond, x, t], dim=1))
        chunk = torch.tanh(x).reshape(batch, self.spec.chunk_size, self.spec.action.dim)
        out: torch.Tensor = self.act_center + self.act_half * chunk
        return out[:, 0] if self.spec.chunk_size == 1 else out  # the protocol: [B, A] when H = 1

    def with_steps(self, steps: int) -> EulerChunkSampler:
        """The same weights sampling with `steps` Euler steps."""
        other = copy.deepcopy(self)
        other.sampler_steps = steps
        return other


class FixedSteps(nn.Module):
    """Wraps a sampler and hides `with_steps`: a module whose K cannot change."""

    def __init__(self, inner: EulerChunkSampler) -> None:
        super().__init__()
        self.inner = inner
        self.spec = inner.spec
        self.obs_history = inner.obs_history
        self.chunk_size = inner.chunk_size
        self.noise_shape = inner.noise_shape
        self.sampler_kind = inner.sampler_kind
        self.sampler_steps = inner.sampler_steps

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        out: torch.Tensor = self.inner(obs, noise)
        return out
