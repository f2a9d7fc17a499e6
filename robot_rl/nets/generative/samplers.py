"""Fixed-K samplers: `(denoiser, cond, noise) -> x₀ [B, H, A]` in normalized action units, deterministic given the
noise. The loop runs over a fixed Python range, so tracing (ONNX export, `torch.jit.trace`) unrolls all K steps.

Time conventions:

- DDIM: integer DDPM steps, from `ddim_timesteps(T, K)[0]` (noisiest) down to 0 (`schedules`).
- Flow and MeanFlow: continuous t with **t = 1 noise, t = 0 data** (the MeanFlow paper's convention, Geng et al.
  2025 eq. 1): `z_t = (1 − t)·x + t·ε`, velocity `v = dz/dt = ε − x`. Sampling integrates from t = 1 to t = 0.
  (Lipman et al. and Liu et al. write the same path with t reversed; only the sign of v differs.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from robot_rl.nets.generative.denoisers import Denoiser
from robot_rl.nets.generative.schedules import Prediction, ddim_step, ddim_timesteps

SAMPLER_KINDS = ("ddim", "flow_euler", "flow_midpoint", "meanflow")
PREDICTIONS_OF: dict[str, tuple[str, ...]] = {
    "ddim": ("epsilon", "sample"),
    "flow_euler": ("velocity", "sample"),
    "flow_midpoint": ("velocity", "sample"),
    "meanflow": ("velocity", "sample"),
}
"""What the denoiser may predict under each sampler kind; the first is the kind's default."""
FlowMethod = Literal["euler", "midpoint"]


def _times(noise: torch.Tensor, value: float) -> torch.Tensor:
    """`[B]` filled with `value` (a trace-time constant; the batch size stays symbolic)."""
    return torch.full_like(noise[:, 0, 0], value)


def ddim_sample(
    denoiser: Denoiser,
    cond: torch.Tensor,
    noise: torch.Tensor,
    alphas_bar: Sequence[float],
    timesteps: Sequence[int],
    prediction: Prediction,
    clip_sample: bool = True,
) -> torch.Tensor:
    """DDIM (η = 0) from `x_T = noise` through `timesteps` (noisiest first); `alphas_bar[t]` are ᾱ_t as floats."""
    x = noise
    for i, t in enumerate(timesteps):
        prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        out = denoiser(x, _times(noise, float(t)), cond)
        x = ddim_step(out, x, alphas_bar[t], alphas_bar[prev] if prev >= 0 else 1.0, prediction, clip_sample)
    return x


def velocity_of(out: torch.Tensor, z: torch.Tensor, t: float | torch.Tensor, prediction: str) -> torch.Tensor:
    """A flow denoiser's output `out` at `z_t` as the velocity `dz/dt`: itself (`velocity`), or `(z − x̂₀)/t` from
    the clean-chunk prediction x̂₀ clipped to the normalized action range (`sample`). `t`: a float or a tensor
    broadcastable to `z` (`[B, 1, 1]`), > 0 for `sample`."""
    if prediction == "sample":
        return (z - out.clamp(-1.0, 1.0)) / t
    return out


def flow_sample(
    denoiser: Denoiser,
    cond: torch.Tensor,
    noise: torch.Tensor,
    steps: int,
    method: FlowMethod = "euler",
    prediction: str = "velocity",
) -> torch.Tensor:
    """Integrate `dz/dt = v(z, t)` from t = 1 (noise) to t = 0 (data) in `steps` equal steps (Euler or midpoint).

    `prediction="sample"`: the denoiser predicts the clean chunk x̂₀ (clipped to the normalized action range
    [-1, 1]) and the velocity is `(z − x̂₀)/t` (from `z_t = (1 − t)·x₀ + t·ε`). Every evaluation is at t ≥ 1/(2K)
    (the last Euler step lands exactly on x̂₀), so the division is safe.
    """
    z, dt = noise, 1.0 / steps

    def velocity(z_: torch.Tensor, t: float) -> torch.Tensor:
        return velocity_of(denoiser(z_, _times(noise, t), cond), z_, t, prediction)

    for k in range(steps):
        t = 1.0 - k * dt
        if method == "euler":
            z = z - dt * velocity(z, t)
        elif method == "midpoint":
            z_mid = z - 0.5 * dt * velocity(z, t)
            z = z - dt * velocity(z_mid, t - 0.5 * dt)
        else:
            raise ValueError(f"unknown flow integration method {method!r}; choose euler or midpoint")
    return z


def meanflow_sample(
    denoiser: Denoiser, cond: torch.Tensor, noise: torch.Tensor, steps: int, prediction: str = "velocity"
) -> torch.Tensor:
    """MeanFlow sampling (Geng et al. 2025, eq. 12): `z_r = z_t − (t − r)·u(z_t, r, t)` over `steps` equal
    intervals from t = 1 to 0; one step is `x = ε − u(ε, 0, 1)`.

    `prediction="sample"`: the denoiser outputs the chunk F the jump from t towards 0 aims at, `u = (z_t − F)/t`
    (`velocity_of`, F clipped to [-1, 1]); a step is then `z_r = (r/t)·z_t + (1 − r/t)·F`, and one step returns
    the clipped F itself."""
    z, dt = noise, 1.0 / steps
    for k in range(steps):
        t, r = 1.0 - k * dt, 1.0 - (k + 1) * dt
        z = z - dt * velocity_of(denoiser(z, _times(noise, t), cond, _times(noise, r)), z, t, prediction)
    return z


class ChunkSampler(nn.Module):
    """One configured sampler: `forward(denoiser, cond [B, C], noise [B, H, A]) -> x₀ [B, H, A]`.

    `kind` ∈ `SAMPLER_KINDS` and `steps` (K, the number of denoiser steps; midpoint makes 2 evaluations per step)
    are plain attributes the exporter records. DDIM needs the training schedule's `alphas_bar` (stored as Python
    floats, so they are constants of the traced graph). `prediction` is what the denoiser outputs
    (`PREDICTIONS_OF[kind]`; None = the kind's default: ε for DDIM, the velocity for flow and MeanFlow).
    """

    def __init__(
        self,
        kind: str,
        steps: int,
        alphas_bar: torch.Tensor | None = None,
        prediction: str | None = None,
        clip_sample: bool = True,
    ) -> None:
        super().__init__()
        if kind not in SAMPLER_KINDS:
            raise ValueError(f"unknown sampler kind {kind!r}; choose one of {SAMPLER_KINDS}")
        if steps < 1:
            raise ValueError(f"sampler steps must be >= 1, got {steps}")
        prediction = PREDICTIONS_OF[kind][0] if prediction is None else prediction
        if prediction not in PREDICTIONS_OF[kind]:
            raise ValueError(f"a {kind} sampler predicts one of {PREDICTIONS_OF[kind]}, got {prediction!r}")
        self.kind, self.steps = kind, int(steps)
        self.prediction = prediction
        self.clip_sample = clip_sample
        self._alphas: tuple[float, ...] = ()
        self._timesteps: tuple[int, ...] = ()
        if kind == "ddim":
            if alphas_bar is None:
                raise ValueError("a DDIM sampler needs the training schedule's alphas_bar")
            self._alphas = tuple(float(a) for a in alphas_bar.tolist())
            self._timesteps = ddim_timesteps(len(self._alphas), steps)

    def with_steps(self, steps: int) -> ChunkSampler:
        """The same sampler with K = `steps` (the trained network is shared: export one bundle per K)."""
        alphas = torch.tensor(self._alphas, dtype=torch.float64) if self.kind == "ddim" else None
        return ChunkSampler(self.kind, steps, alphas, self.prediction, self.clip_sample)

    def forward(self, denoiser: Denoiser, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if self.kind == "ddim":
            ddim_prediction: Prediction = "sample" if self.prediction == "sample" else "epsilon"
            return ddim_sample(denoiser, cond, noise, self._alphas, self._timesteps, ddim_prediction, self.clip_sample)
        if self.kind == "meanflow":
            return meanflow_sample(denoiser, cond, noise, self.steps, self.prediction)
        method: FlowMethod = "euler" if self.kind == "flow_euler" else "midpoint"
        return flow_sample(denoiser, cond, noise, self.steps, method, self.prediction)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, steps={self.steps}, prediction={self.prediction}"
