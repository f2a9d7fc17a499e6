"""Pure TD3 losses (the critic regression is shared with SAC)."""

from __future__ import annotations

import torch

from robot_rl.algos.sac.losses import critic_loss

__all__ = ["actor_loss", "critic_loss", "smoothed_target_action", "td_target"]


def smoothed_target_action(target_action: torch.Tensor, noise_std: float, noise_clip: float) -> torch.Tensor:
    """Target policy smoothing: `clip(π'(s') + clip(ε, ±c), ±1)` with `ε ~ N(0, σ²)` (TD3 eq. 14)."""
    noise = (torch.randn_like(target_action) * noise_std).clamp(-noise_clip, noise_clip)
    return (target_action + noise).clamp(-1.0, 1.0)


def td_target(
    reward: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor, gamma: float | torch.Tensor
) -> torch.Tensor:
    """`r + γ (1 - terminated) min_e Q'(s', ã)` → `[B]` (clipped double-Q, TD3 eq. 10). `gamma` is a float or a
    per-row `[B]` discount (γ^k of n-step rows, `robot_rl.data.nstep`)."""
    if next_q.dim() != 2 or next_q.shape[1] != reward.shape[0] or terminated.shape != reward.shape:
        raise ValueError(
            f"next_q {tuple(next_q.shape)}, reward {tuple(reward.shape)}, terminated {tuple(terminated.shape)}: "
            "expected [E, B], [B], [B]"
        )
    return reward + gamma * (1.0 - terminated) * next_q.min(0).values


def actor_loss(q_pi: torch.Tensor) -> torch.Tensor:
    """`-E_s[Q_1(s, π(s))]`: TD3 follows the first critic only. `q_pi [E, B]`."""
    if q_pi.dim() != 2:
        raise ValueError(f"q_pi has shape {tuple(q_pi.shape)}, expected [E, B]")
    return -q_pi[0].mean()
