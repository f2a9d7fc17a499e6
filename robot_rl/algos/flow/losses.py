"""Pure flow-matching loss. Convention (as in `robot_rl.nets.generative.samplers`): t = 1 noise, t = 0 data."""

from __future__ import annotations

import torch

from robot_rl.nets.generative.denoisers import Denoiser


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The straight path `z_t = (1 − t)·x₀ + t·ε` for `x0, noise [B, H, A]`, `t [B]`."""
    tt = t.view(-1, 1, 1)
    return (1.0 - tt) * x0 + tt * noise


def flow_matching_loss(
    denoiser: Denoiser,
    x0: torch.Tensor,
    cond: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    prediction: str = "velocity",
) -> torch.Tensor:
    """Conditional flow matching with the optimal-transport path and σ_min = 0 (Lipman et al. 2023, eqs. 20–23;
    rectified flow, Liu et al. 2023, eq. 1): `E ‖v_θ(z_t, t) − (ε − x₀)‖²`, the path's velocity dz/dt being
    `ε − x₀` in our t = 1-is-noise convention. Mean over batch and elements.

    `prediction="sample"`: the network predicts the clean chunk and the loss is `E ‖x̂_θ(z_t, t) − x₀‖²` (the
    velocity follows as `(z_t − x̂)/t`; the same path, with the x₀-prediction that made diffusion train far faster
    here, cf. Li & He 2025, "Back to Basics: Let Denoising Generative Models Denoise")."""
    if x0.dim() != 3 or noise.shape != x0.shape or t.shape != (x0.shape[0],) or cond.shape[0] != x0.shape[0]:
        raise ValueError(
            f"flow_matching_loss: x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} must be one [B, H, A], t "
            f"{tuple(t.shape)} [B], cond {tuple(cond.shape)} [B, C]"
        )
    if prediction not in ("velocity", "sample"):
        raise ValueError(f"flow_matching_loss: prediction must be velocity or sample, got {prediction!r}")
    pred = denoiser(interpolate(x0, noise, t), t, cond)
    target = x0 if prediction == "sample" else noise - x0
    return (pred - target).pow(2).mean()
