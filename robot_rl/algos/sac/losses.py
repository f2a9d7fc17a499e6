"""Pure SAC losses. Shapes: E = ensemble size, B = batch size."""

from __future__ import annotations

import torch


def _check(name: str, t: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shape}")


def soft_td_target(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    next_q: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: torch.Tensor,
    gamma: float | torch.Tensor,
) -> torch.Tensor:
    """`r + γ (1 - terminated) (min_e Q'(s', a') - α log π(a'|s'))` → `[B]` (SAC eq. 3 with twin min). `gamma`
    is a float or a per-row `[B]` discount (γ^k of n-step rows, `robot_rl.data.nstep`).

    Truncated transitions are *not* terminal: they bootstrap (the caller never passes truncation).
    """
    b = reward.shape[0]
    _check("reward", reward, (b,))
    _check("terminated", terminated, (b,))
    _check("next_log_prob", next_log_prob, (b,))
    if next_q.dim() != 2 or next_q.shape[1] != b:
        raise ValueError(f"next_q has shape {tuple(next_q.shape)}, expected [E, {b}]")
    soft_value = next_q.min(0).values - alpha * next_log_prob
    return reward + gamma * (1.0 - terminated) * soft_value


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over members of the mean squared TD error (SAC eq. 5 for each critic). `q [E, B]`, `target [B]`."""
    if q.dim() != 2 or target.shape != q.shape[1:]:
        raise ValueError(f"q has shape {tuple(q.shape)} and target {tuple(target.shape)}; expected [E, B] and [B]")
    return 0.5 * (q - target.detach().unsqueeze(0)).pow(2).mean(1).sum()


def actor_loss(q_pi: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """`E_s[α log π(a|s) - min_e Q(s, a)]` (SAC eq. 7). `q_pi [E, B]`, `log_prob [B]`."""
    if q_pi.dim() != 2 or log_prob.shape != q_pi.shape[1:]:
        raise ValueError(f"q_pi {tuple(q_pi.shape)} / log_prob {tuple(log_prob.shape)}: expected [E, B] / [B]")
    return (alpha.detach() * log_prob - q_pi.min(0).values).mean()


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """`-log α · (log π + H̄)` averaged (SAC eq. 18, optimized in log space as is standard)."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()
