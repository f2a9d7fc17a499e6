"""Pure residual-action arithmetic; the TD3 losses themselves are `robot_rl.algos.td3.losses`."""

from __future__ import annotations

import torch


def combine(base_action: torch.Tensor, residual: torch.Tensor, scale: float) -> torch.Tensor:
    """The executed normalized action `clip(a_base + scale · residual, -1, 1)` (residual RL, Johannink et al. 2019,
    eq. 1, with the correction bounded by `scale`). `base_action, residual [B, A]`, residual in [-1, 1] (no shape
    check: it runs inside the traced export graph, where a Python-side comparison would be frozen in)."""
    return (base_action + scale * residual).clamp(-1.0, 1.0)


def anchored_actor_loss(
    policy_loss: torch.Tensor, q_pi: torch.Tensor, residual: torch.Tensor, weight: float
) -> torch.Tensor:
    """The actor loss held near the base: `policy_loss / E|Q| + weight · E[r²]`.

    TD3+BC's regularized actor objective (Fujimoto & Gu 2021, eq. 3, λ = 1 / E|Q| with the gradient stopped
    through the normalizer), with the frozen base in the role of the behaviour policy: deviating from it *is* the
    residual `r` (in [-1, 1] units, before `residual_scale`), so the penalty is its mean square. Dividing by the
    critic's scale makes `weight` independent of the reward's: the residual leaves zero only where the critic's
    gain is comparable to the penalty, not wherever an untrained critic's noisy action-gradient points. With
    `weight == 0` this is `policy_loss` unchanged (not rescaled). `policy_loss` is the learner's own actor loss
    (TD3: -E[Q]; SAC: E[α log π - Q]); `q_pi [E, B]`, `residual [B, A]`.
    """
    if weight == 0.0:
        return policy_loss
    scale = q_pi.detach().abs().mean().clamp_min(1e-6)
    return policy_loss / scale + weight * residual.pow(2).mean()
