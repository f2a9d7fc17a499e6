"""Pure MeanFlow loss (Geng et al. 2025). Convention (the paper's): `z_t = (1 − t)·x + t·ε`, t = 1 noise."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import jvp

from robot_rl.algos.flow.losses import interpolate
from robot_rl.nets.generative.denoisers import Denoiser

T_MIN = 1e-3
"""Smallest t that `u = (z − F)/t` divides by (sample prediction): logit-normal times come arbitrarily close to 0."""


def meanflow_loss(
    denoiser: Denoiser,
    x0: torch.Tensor,
    cond: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    r: torch.Tensor,
    adaptive_power: float = 1.0,
    adaptive_eps: float = 1e-3,
    tangent: str = "model",
    teacher: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    prediction: str = "velocity",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The MeanFlow objective; returns `(loss, mse)` (mse: the per-element squared error before the adaptive
    weight, for logging; in data units with `prediction="sample"`).

    The average velocity `u(z_t, r, t) = 1/(t−r) ∫_r^t v dτ` satisfies the MeanFlow identity (eq. 6)
    `u = v − (t − r)·du/dt`, whose total derivative `du/dt = v·∂_z u + ∂_t u` (eq. 8) is one Jacobian-vector
    product of `(z, r, t) ↦ u_θ(z, r, t)` with tangent `(v, 0, 1)`. The target (eq. 10)
    `u_tgt = v − (t − r)·(v·∂_z u_θ + ∂_t u_θ)` is held constant (stop-gradient, `detach`), and the loss is
    `sg(w)·‖u_θ − u_tgt‖²` with the adaptive weight `w = 1 / (‖Δ‖² + c)^p` (§4.3, eq. 22).

    `tangent` picks the velocity the JVP moves z along:

    - `conditional` (the original MeanFlow): `v = ε − x₀`, the path's per-sample velocity, in the tangent and in
      the target. The target then carries the sample's noise twice, once through the JVP.
    - `model` (Improved MeanFlow, Geng et al. 2025b, arXiv 2512.02012, §4.1): the tangent is the network's own
      instantaneous velocity `ṽ = sg(u_θ(z_t, t, t))` (u over an empty interval is v), and the loss is
      `‖V − (ε − x₀)‖²` with the compound `V = u_θ + (t − r)·sg(ṽ·∂_z u_θ + ∂_t u_θ)`. Its gradient equals the
      form above with that JVP, so the code is shared; the regression target depends on the sample only through
      `ε − x₀`, a standard least-squares problem whose minimizer satisfies the identity with the marginal v.

    `teacher(z, t, cond) -> v` (flow-map distillation, `robot_rl.algos.meanflow.teacher`): a trained flow's
    velocity field replaces `ε − x₀` in both the tangent and the target, `u_tgt = v_T − (t − r)·(v_T·∂_z u_θ +
    ∂_t u_θ)` with `v_T = v_T(z_t, t)`. The target is then deterministic given `z_t`, and the minimizer is the
    average velocity of the teacher's ODE (its 1-step map is the teacher's K → ∞ sampler); `tangent` is unused.

    `prediction="sample"` (the x₀-style parametrization, as `flow_x0` is for flow): the network outputs the chunk
    F that the jump from t lands on at r = 0, and `u_θ = (z_t − F_θ)/t` (t ≥ `T_MIN`). The objective is the same
    identity, weighted by t² so that it is the squared error of F against the target's implied chunk
    `z_t − t·u_tgt` (data units, as flow_x0's loss; unweighted, small t would dominate through 1/t²). A one-step
    sample is then F itself: the network's output is the action chunk, not `ε` minus a velocity the network must
    make cancel the noise exactly.

    `x0, noise [B, H, A]`, `t, r [B]` with r ≤ t, `cond [B, C]`.
    """
    b = x0.shape[0]
    if x0.dim() != 3 or noise.shape != x0.shape or t.shape != (b,) or r.shape != (b,) or cond.shape[0] != b:
        raise ValueError(
            f"meanflow_loss: x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} must be one [B, H, A], t "
            f"{tuple(t.shape)} and r {tuple(r.shape)} [B], cond {tuple(cond.shape)} [B, C]"
        )
    if tangent not in ("model", "conditional"):
        raise ValueError(f"meanflow_loss: tangent must be model or conditional, got {tangent!r}")
    if prediction not in ("velocity", "sample"):
        raise ValueError(f"meanflow_loss: prediction must be velocity or sample, got {prediction!r}")
    z = interpolate(x0, noise, t)
    v = noise - x0 if teacher is None else teacher(z, t, cond).detach()

    def u_fn(z_: torch.Tensor, r_: torch.Tensor, t_: torch.Tensor) -> torch.Tensor:
        out = denoiser(z_, t_, cond, r_)
        if prediction == "sample":  # unclipped while training: a clip would cut the gradient off
            return (z_ - out) / t_.clamp_min(T_MIN).view(-1, 1, 1)
        return out

    if teacher is not None:
        direction = v
    elif tangent == "model":
        with torch.no_grad():
            direction = u_fn(z, t, t)  # ṽ = u(z, t, t): the network's instantaneous velocity
    else:
        direction = v
    u, dudt = jvp(u_fn, (z, r, t), (direction, torch.zeros_like(r), torch.ones_like(t)))  # type: ignore[misc]
    u_tgt = (v - (t - r).view(-1, 1, 1) * dudt).detach()  # stop-gradient: the target is a constant
    sq = (u - u_tgt).pow(2).flatten(1).sum(1)  # ‖Δ‖² per sample
    if prediction == "sample":
        sq = sq * t.clamp_min(T_MIN).pow(2)  # = ‖F_θ − (z − t·u_tgt)‖²: the error in data units
    weight = (sq.detach() + adaptive_eps).pow(-adaptive_power)
    loss = (weight * sq).mean()
    return loss, sq.detach().mean() / x0[0].numel()
