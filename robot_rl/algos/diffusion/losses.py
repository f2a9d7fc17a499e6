"""Pure DDPM training loss. Shapes: B batch, H chunk length, A action size, C conditioning size."""

from __future__ import annotations

import torch

from robot_rl.nets.generative.denoisers import Denoiser
from robot_rl.nets.generative.schedules import Prediction, ddpm_add_noise


def ddpm_loss(
    denoiser: Denoiser,
    x0: torch.Tensor,
    cond: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    alphas_bar: torch.Tensor,
    prediction: Prediction,
) -> torch.Tensor:
    """DDPM's simplified objective (Ho et al. 2020, eq. 14): `E ‖ε − ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t)‖²`.

    With `prediction="sample"` the denoiser predicts x₀ and the target is x₀ (the sample-prediction variant
    Diffusion Policy also supports). `x0, noise [B, H, A]`, `t [B]` integer steps, `cond [B, C]`; the mean is over
    batch and elements, so the scale does not depend on H·A.
    """
    if x0.dim() != 3 or noise.shape != x0.shape or t.shape != (x0.shape[0],) or cond.shape[0] != x0.shape[0]:
        raise ValueError(
            f"ddpm_loss: x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} must be one [B, H, A], t "
            f"{tuple(t.shape)} [B], cond {tuple(cond.shape)} [B, C]"
        )
    x_t = ddpm_add_noise(x0, noise, t, alphas_bar)
    pred = denoiser(x_t, t.to(x0.dtype), cond)
    target = noise if prediction == "epsilon" else x0
    return (pred - target).pow(2).mean()
