"""Pure LAC losses (Han, Zhang, Wang, Pan 2020, "Actor-Critic Reinforcement Learning for Control with Stability
Guarantee", IEEE RA-L). Equation numbers are the paper's. Shapes: B = batch size. Costs are ≥ 0, in the task's
cost units; Lyapunov values are in the same units (a sum of costs)."""

from __future__ import annotations

import torch


def _check(name: str, t: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shape}")


def lyapunov_td_target(
    cost: torch.Tensor, terminated: torch.Tensor, next_l: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Infinite-horizon Lyapunov candidate `c + γ·L_c'(s', π(s'))` → `[B]` (Han eq. 8), `next_l` from the target
    critic.

    A terminated row is an absorbing failure that keeps costing its last cost: its target is `c / (1 − γ)`, the
    value of staying there forever. Not bootstrapping (zero) would make failing early the cheapest way out for a
    cost minimizer; the paper's tasks add a large terminal cost for the same reason. Truncation is not termination:
    the caller never passes it, so a time-limited row bootstraps."""
    b = cost.shape[0]
    _check("cost", cost, (b,))
    _check("terminated", terminated, (b,))
    _check("next_l", next_l, (b,))
    absorbing = cost / (1.0 - gamma)
    return cost + gamma * torch.where(terminated > 0, absorbing, next_l)


def critic_loss(l_value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`½·E[(L_c(s, a) − L_target)²]` (Han eq. 7); the target (eq. 8 or the finite-horizon sum of eq. 9) carries no
    gradient. `l_value [B]`, `target [B]`."""
    if l_value.dim() != 1 or target.shape != l_value.shape:
        raise ValueError(f"l_value {tuple(l_value.shape)} / target {tuple(target.shape)}: expected [B] / [B]")
    return 0.5 * (l_value - target.detach()).pow(2).mean()


def lyapunov_violation(
    next_l_pi: torch.Tensor, l_value: torch.Tensor, cost: torch.Tensor, alpha3: float
) -> torch.Tensor:
    """`ΔL = L_c(s', π(s')) − L_c(s, a) + α₃·c` per row → `[B]` (Han eq. 11): the sampled decrease condition holds
    where ΔL ≤ 0. `L_c(s, a)` is a constant here (only π(s') is optimized), so it is detached."""
    b = cost.shape[0]
    _check("next_l_pi", next_l_pi, (b,))
    _check("l_value", l_value, (b,))
    _check("cost", cost, (b,))
    return next_l_pi - l_value.detach() + alpha3 * cost


def actor_loss(violation: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """`λ·E[ΔL] + α·E[log π(a|s)]` (Han eq. 12): the Lagrangian of the entropy-regularized objective under the
    decrease constraint. λ and α are constants here. `violation [B]` (eq. 11), `log_prob [B]` at sampled states."""
    if violation.dim() != 1 or log_prob.dim() != 1:
        raise ValueError(f"violation {tuple(violation.shape)} / log_prob {tuple(log_prob.shape)}: expected [B] / [B]")
    return lam.detach() * violation.mean() + alpha.detach() * log_prob.mean()


def lambda_loss(log_lambda: torch.Tensor, violation: torch.Tensor) -> torch.Tensor:
    """`−log λ · E[ΔL]` (the multiplier update below Han eq. 14), minimized: gradient ascent of log λ on the mean
    violation, so λ grows while the constraint is violated on average and shrinks while it holds. Log space keeps
    λ > 0 and its steps scale-free."""
    return -(log_lambda * violation.detach().mean())


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """`−log α · E[log π + H̄]` (SAC, Haarnoja et al. 2018 eq. 18, in log space; Han et al. use it unchanged)."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()
