"""LAC's pure losses: shapes, the sign of the decrease condition, the multiplier's direction, the targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robot_rl.algos.lac import losses
from robot_rl.algos.lac.config import LACConfig


def test_loss_shapes_and_shape_errors() -> None:
    b = 8
    l_value, target, cost = torch.rand(b), torch.rand(b), torch.rand(b)
    assert losses.critic_loss(l_value, target).shape == ()
    v = losses.lyapunov_violation(torch.rand(b), l_value, cost, 1.0)
    assert v.shape == (b,)
    assert losses.actor_loss(v, torch.randn(b), torch.tensor(0.5), torch.tensor(1.0)).shape == ()
    assert losses.lambda_loss(torch.tensor(0.0, requires_grad=True), v).shape == ()
    assert losses.lyapunov_td_target(cost, torch.zeros(b), torch.rand(b), 0.99).shape == (b,)
    with pytest.raises(ValueError, match=r"next_l_pi has shape \(7,\), expected \(8,\)"):
        losses.lyapunov_violation(torch.rand(7), l_value, cost, 1.0)
    with pytest.raises(ValueError, match="expected"):
        losses.critic_loss(torch.rand(b, 2), target)
    with pytest.raises(ValueError, match="next_l"):
        losses.lyapunov_td_target(cost, torch.zeros(b), torch.rand(b, 1), 0.99)


def test_decrease_condition_sign() -> None:
    """ΔL ≤ 0 where L drops by at least α₃·c, > 0 where it rises (Han eq. 11)."""
    l_now = torch.tensor([10.0, 10.0, 10.0])
    cost = torch.tensor([1.0, 1.0, 1.0])
    l_next = torch.tensor([5.0, 9.0, 12.0])  # drops by 5 (> α₃c), by exactly α₃c, rises by 2
    v = losses.lyapunov_violation(l_next, l_now, cost, alpha3=1.0)
    assert v[0] < 0 and v[1] == 0 and v[2] > 0
    torch.testing.assert_close(v, torch.tensor([-4.0, 0.0, 3.0]))
    # a larger decrease rate asks for more: the same 5-unit drop violates α₃ = 6
    assert losses.lyapunov_violation(l_next, l_now, cost, alpha3=6.0)[0] > 0


def _lambda_after_steps(violation: float, steps: int = 20, init: float = 0.5) -> float:
    log_lambda = torch.tensor(math.log(init), requires_grad=True)
    opt = torch.optim.Adam([log_lambda], lr=1e-2)
    v = torch.full((16,), violation)
    for _ in range(steps):
        opt.zero_grad()
        losses.lambda_loss(log_lambda, v).backward()
        opt.step()
    return float(log_lambda.detach().exp())


def test_multiplier_grows_when_violated_and_shrinks_when_satisfied() -> None:
    assert _lambda_after_steps(+0.3) > 0.5
    assert _lambda_after_steps(-0.3) < 0.5
    assert _lambda_after_steps(-0.3) > 0  # log space: λ never crosses zero
    # the gradient is taken in log space: d loss / d log λ = −E[ΔL], whatever λ's scale
    log_lambda = torch.tensor(math.log(1e-3), requires_grad=True)
    losses.lambda_loss(log_lambda, torch.tensor([0.2, 0.6])).backward()
    assert log_lambda.grad is not None and math.isclose(float(log_lambda.grad), -0.4, rel_tol=1e-6)


def test_actor_loss_is_the_lagrangian_and_treats_multipliers_as_constants() -> None:
    v = torch.tensor([1.0, 3.0], requires_grad=True)
    log_prob = torch.tensor([-1.0, -2.0], requires_grad=True)
    alpha = torch.tensor(0.5, requires_grad=True)
    lam = torch.tensor(0.25, requires_grad=True)
    loss = losses.actor_loss(v, log_prob, alpha, lam)
    assert math.isclose(float(loss.detach()), 0.25 * 2.0 + 0.5 * -1.5)
    loss.backward()
    assert alpha.grad is None and lam.grad is None
    assert v.grad is not None and torch.allclose(v.grad, torch.full((2,), 0.125))


def test_violation_does_not_push_gradients_into_the_current_value() -> None:
    l_now = torch.tensor([2.0], requires_grad=True)
    l_next = torch.tensor([1.0], requires_grad=True)
    losses.lyapunov_violation(l_next, l_now, torch.tensor([0.5]), 1.0).sum().backward()
    assert l_now.grad is None and l_next.grad is not None


def test_td_target_bootstraps_and_terminal_rows_are_absorbing() -> None:
    cost = torch.tensor([1.0, 1.0, 0.5])
    terminated = torch.tensor([0.0, 1.0, 1.0])
    next_l = torch.tensor([10.0, 10.0, 10.0])
    target = losses.lyapunov_td_target(cost, terminated, next_l, gamma=0.9)
    # c + γ L' ; a terminal row keeps costing c forever: c / (1 − γ)
    torch.testing.assert_close(target, torch.tensor([10.0, 10.0, 5.0]))


def test_critic_loss_is_half_mse_and_target_carries_no_gradient() -> None:
    l_value = torch.tensor([1.0, 3.0], requires_grad=True)
    target = torch.tensor([0.0, 1.0], requires_grad=True)
    loss = losses.critic_loss(l_value, target)
    assert math.isclose(float(loss.detach()), 0.5 * (1 + 4) / 2)
    loss.backward()
    assert target.grad is None


def test_temperature_loss_direction() -> None:
    log_alpha = torch.tensor(0.0, requires_grad=True)
    losses.temperature_loss(log_alpha, torch.full((4,), 2.0), target_entropy=-1.0).backward()
    assert log_alpha.grad is not None and float(log_alpha.grad) < 0  # entropy below target: α grows


@pytest.mark.parametrize(
    ("field", "value"),
    [("alpha3", -1.0), ("horizon", -1), ("gamma", 1.0), ("init_lambda", 2.0), ("lambda_lr", 0.0), ("tau", 0.0)],
)
def test_config_rejects_bad_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        LACConfig(**{field: value})  # type: ignore[arg-type]


def test_config_defaults_follow_the_paper() -> None:
    cfg = LACConfig()
    assert cfg.alpha3 == 1.0 and cfg.horizon == 0 and cfg.init_lambda == 1.0 and cfg.target_entropy is None
    assert np.isclose(cfg.gamma, 0.995) and cfg.actor_lr == 1e-4 and cfg.critic_lr == 3e-4
