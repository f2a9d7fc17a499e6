"""DDPM noise schedule and the pure DDPM-forward / DDIM-step arithmetic (checked against `diffusers` in tests).

Integer diffusion steps: `t ∈ {0, …, T-1}`, step 0 the least noisy. `alphas_cumprod[t] = ᾱ_t = Π_{s≤t} (1 − β_s)`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Prediction = Literal["epsilon", "sample"]
PREDICTIONS = ("epsilon", "sample")


def squared_cosine_betas(num_steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """`[T]` float32 betas of the squared-cosine schedule (Nichol & Dhariwal 2021, eq. 17):
    `ᾱ(s) = cos²((s + 0.008) / 1.008 · π/2)`, `β_i = min(1 − ᾱ((i+1)/T) / ᾱ(i/T), max_beta)` (the clip avoids the
    singularity at s = 1)."""
    if num_steps < 1:
        raise ValueError(f"squared_cosine_betas: num_steps must be >= 1, got {num_steps}")

    def alpha_bar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1.0 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta) for i in range(num_steps)]
    return torch.tensor(betas, dtype=torch.float32)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """`ᾱ_t = Π_{s≤t} (1 − β_s)`, `[T]`, in the betas' dtype."""
    return torch.cumprod(1.0 - betas, dim=0)


def ddpm_add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, alphas_bar: torch.Tensor) -> torch.Tensor:
    """The forward process sample `x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε` (Ho et al. 2020, eq. 4), for `x0, noise
    [B, ...]` and integer steps `t [B]`."""
    a = alphas_bar[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return a.sqrt() * x0 + (1.0 - a).sqrt() * noise


def ddim_timesteps(num_train_steps: int, num_inference_steps: int) -> tuple[int, ...]:
    """The K steps DDIM visits, from the noisiest: `(K-1)·s, …, s, 0` with `s = T // K` ("leading" spacing,
    Song et al. 2021 §4.2; diffusers' default)."""
    if not 1 <= num_inference_steps <= num_train_steps:
        raise ValueError(f"DDIM: need 1 <= K <= T, got K={num_inference_steps}, T={num_train_steps}")
    stride = num_train_steps // num_inference_steps
    return tuple(range((num_inference_steps - 1) * stride, -1, -stride))


def ddim_step(
    model_output: torch.Tensor,
    sample: torch.Tensor,
    alpha_bar_t: torch.Tensor | float,
    alpha_bar_prev: torch.Tensor | float,
    prediction: Prediction,
    clip_sample: bool,
) -> torch.Tensor:
    """One deterministic DDIM step (η = 0; Song et al. 2021, eq. 12) from step t to its predecessor.

    `x₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t` (ε-prediction) or the model output itself (sample prediction, then
    `ε̂ = (x_t − √ᾱ_t·x₀)/√(1−ᾱ_t)`); with `clip_sample` x₀ is clipped to [-1, 1] (ε̂ is not re-derived, as in
    diffusers' default); `x_prev = √ᾱ_prev·x₀ + √(1−ᾱ_prev)·ε̂`. `alpha_bar_prev` is 1 after the last step.
    """
    beta_t = 1.0 - alpha_bar_t
    if prediction == "epsilon":
        eps = model_output
        x0 = (sample - beta_t**0.5 * eps) / alpha_bar_t**0.5
    elif prediction == "sample":
        x0 = model_output
        eps = (sample - alpha_bar_t**0.5 * x0) / beta_t**0.5
    else:
        raise ValueError(f"unknown prediction type {prediction!r}; choose one of {PREDICTIONS}")
    if clip_sample:
        x0 = x0.clamp(-1.0, 1.0)
    return alpha_bar_prev**0.5 * x0 + (1.0 - alpha_bar_prev) ** 0.5 * eps
