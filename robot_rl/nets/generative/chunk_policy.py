"""The deployable generative policy: raw observation history + explicit noise in, physical action chunk out."""

from __future__ import annotations

import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.nets.deployable import physical_action_affine
from robot_rl.nets.generative.normalizers import MinMaxNormalizer
from robot_rl.nets.generative.samplers import ChunkSampler


class ChunkSamplerPolicy(nn.Module):
    """`forward(obs [B, T_o·O] raw, noise [B, H, A]) -> actions [B, H, A]` physical; a `DeployablePolicy`.

    Inside, in order: observation normalization (z-score or min-max buffers, per observation dimension, shared by
    the T_o history slots), the fixed-K sampler over the denoiser (normalized units), a clip to [-1, 1], the
    action normalizer's inverse (data min-max range → the spec's normalized range) and the spec's affine map to
    physical units (its scale and offset come from `robot_rl.core.robot.normalized_to_physical`, the one place that
    map is written, and are applied as `a·scale + offset` like `TanhPolicy`). The noise is an input, never drawn
    here, so the module is a deterministic function (principle 7).

    Args:
        spec: the chunked spec (`chunk_size` H, `execution_horizon` H_a, `obs_history` T_o).
        obs_normalizer: `[..., O] -> [..., O]` (buffers).
        action_normalizer: data range ↔ [-1, 1] (`inverse` maps the sampler's output back).
        denoiser: `(x [B, H, A], t [B], cond [B, T_o·O], r) -> [B, H, A]`.
        sampler: the configured `ChunkSampler` (kind and K).
    """

    def __init__(
        self,
        spec: PolicySpec,
        obs_normalizer: nn.Module,
        action_normalizer: MinMaxNormalizer,
        denoiser: nn.Module,
        sampler: ChunkSampler,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.obs_history = spec.obs_history
        self.chunk_size = spec.chunk_size
        self.noise_shape: tuple[int, ...] | None = (spec.chunk_size, spec.action.dim)
        self.obs_dim = spec.observation.dim
        self.obs_normalizer = obs_normalizer
        self.action_normalizer = action_normalizer
        self.denoiser = denoiser
        self.sampler = sampler
        scale, offset = physical_action_affine(spec)
        self.register_buffer("action_scale", scale)
        self.register_buffer("action_bias", offset)

    action_scale: torch.Tensor
    action_bias: torch.Tensor

    @property
    def sampler_kind(self) -> str:
        """ "ddim", "flow_euler", "flow_midpoint" or "meanflow" (recorded in the export manifest)."""
        return self.sampler.kind

    @property
    def sampler_steps(self) -> int:
        """K: sampler steps per chunk."""
        return self.sampler.steps

    def with_steps(self, steps: int) -> ChunkSamplerPolicy:
        """This policy with a K = `steps` sampler; normalizers and denoiser are shared, not copied (the exporter's
        `sampler_steps` / `export_sampler_variants` use it to write one bundle per K)."""
        return ChunkSamplerPolicy(
            self.spec, self.obs_normalizer, self.action_normalizer, self.denoiser, self.sampler.with_steps(steps)
        )

    def condition(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw `[B, T_o·O]` → normalized conditioning `[B, T_o·O]` (each slot normalized per dimension)."""
        hist = obs.reshape(obs.shape[0], self.obs_history, self.obs_dim)
        out: torch.Tensor = self.obs_normalizer(hist).flatten(1)
        return out

    def sample_normalized(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The chunk in the learner's normalized units `[B, H, A]` ⊂ [-1, 1] (the spec's range)."""
        x = self.sampler(self.denoiser, self.condition(obs), noise).clamp(-1.0, 1.0)
        return self.action_normalizer.inverse(x).clamp(-1.0, 1.0)

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            raise ValueError(
                f"ChunkSamplerPolicy needs its noise as an input: noise [B, {self.chunk_size}, {self.spec.action.dim}]"
            )
        out: torch.Tensor = self.sample_normalized(obs, noise) * self.action_scale + self.action_bias
        return out
