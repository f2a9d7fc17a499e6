"""Pure SAC/TD3 losses: bootstrapping rules, hand-computed values, shape errors, gradient flow."""

from __future__ import annotations

import pytest
import torch

from robot_rl.algos.sac import losses as sac_losses
from robot_rl.algos.td3 import losses as td3_losses

T = torch.tensor


def test_soft_td_target_bootstraps_only_when_not_terminated() -> None:
    reward = T([1.0, 1.0, 2.0])
    next_q = T([[5.0, 3.0, 2.0], [4.0, 6.0, 1.0]])  # min over members: [4, 3, 1]
    next_log_prob = T([0.5, -1.0, 0.0])
    alpha, gamma = T(0.2), 0.9
    target = sac_losses.soft_td_target(reward, T([1.0, 0.0, 0.0]), next_q, next_log_prob, alpha, gamma)
    expected = T([1.0, 1.0 + 0.9 * (3.0 + 0.2), 2.0 + 0.9 * 1.0])
    torch.testing.assert_close(target, expected)
    # no termination at all: every row bootstraps, including the first
    target_all = sac_losses.soft_td_target(reward, torch.zeros(3), next_q, next_log_prob, alpha, gamma)
    torch.testing.assert_close(target_all[0], T(1.0 + 0.9 * (4.0 - 0.1)))


def test_td3_target_bootstraps_only_when_not_terminated() -> None:
    next_q = T([[5.0, 3.0], [4.0, 6.0]])
    target = td3_losses.td_target(T([1.0, -1.0]), T([0.0, 1.0]), next_q, 0.5)
    torch.testing.assert_close(target, T([1.0 + 0.5 * 4.0, -1.0]))


def test_soft_td_target_shape_errors_name_the_shapes() -> None:
    ok = {"reward": torch.zeros(4), "terminated": torch.zeros(4), "next_q": torch.zeros(2, 4), "lp": torch.zeros(4)}
    with pytest.raises(ValueError, match=r"reward has shape \(4, 1\)"):
        sac_losses.soft_td_target(torch.zeros(4, 1), ok["terminated"], ok["next_q"], ok["lp"], T(1.0), 0.99)
    with pytest.raises(ValueError, match=r"terminated has shape \(3,\), expected \(4,\)"):
        sac_losses.soft_td_target(ok["reward"], torch.zeros(3), ok["next_q"], ok["lp"], T(1.0), 0.99)
    with pytest.raises(ValueError, match=r"next_q has shape \(4, 2\)"):
        sac_losses.soft_td_target(ok["reward"], ok["terminated"], torch.zeros(4, 2), ok["lp"], T(1.0), 0.99)
    with pytest.raises(ValueError, match=r"next_log_prob has shape \(4, 1\)"):
        sac_losses.soft_td_target(ok["reward"], ok["terminated"], ok["next_q"], torch.zeros(4, 1), T(1.0), 0.99)


def test_other_loss_shape_errors_name_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(5,\)"):
        sac_losses.critic_loss(torch.zeros(2, 4), torch.zeros(5))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        sac_losses.critic_loss(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(3,\)"):
        sac_losses.actor_loss(torch.zeros(2, 4), torch.zeros(3), T(1.0))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        td3_losses.td_target(torch.zeros(4), torch.zeros(4), torch.zeros(2, 3), 0.99)
    with pytest.raises(ValueError, match=r"\(4, 1\)"):
        td3_losses.td_target(torch.zeros(4), torch.zeros(4, 1), torch.zeros(2, 4), 0.99)
    with pytest.raises(ValueError, match=r"\(4,\)"):
        td3_losses.actor_loss(torch.zeros(4))


def test_critic_loss_value_and_target_is_not_differentiated() -> None:
    q = T([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = T([0.0, 0.0], requires_grad=True)
    loss = sac_losses.critic_loss(q, target)
    torch.testing.assert_close(loss, T(0.5 * ((1 + 4) / 2 + (9 + 16) / 2)))
    loss.backward()
    assert target.grad is None
    torch.testing.assert_close(q.grad, T([[0.5, 1.0], [1.5, 2.0]]))  # d/dq 0.5 mean (q - y)^2 = (q - y) / B


def test_sac_actor_loss_uses_min_q_and_does_not_train_alpha() -> None:
    q_pi = T([[1.0, 5.0], [2.0, 4.0]])  # min: [1, 4]
    log_prob = T([0.0, 1.0], requires_grad=True)
    alpha = T(0.5, requires_grad=True)
    loss = sac_losses.actor_loss(q_pi, log_prob, alpha)
    torch.testing.assert_close(loss, T(((0.0 - 1.0) + (0.5 - 4.0)) / 2))
    loss.backward()
    assert alpha.grad is None
    torch.testing.assert_close(log_prob.grad, T([0.25, 0.25]))


def test_td3_actor_loss_follows_first_critic() -> None:
    torch.testing.assert_close(td3_losses.actor_loss(T([[1.0, 3.0], [-10.0, -10.0]])), T(-2.0))


def test_temperature_loss_moves_only_log_alpha_in_the_right_direction() -> None:
    log_alpha = T(0.0, requires_grad=True)
    log_prob = T([2.0, 2.0], requires_grad=True)  # entropy -2, below the target -1
    loss = sac_losses.temperature_loss(log_alpha, log_prob, target_entropy=-1.0)
    loss.backward()
    assert log_prob.grad is None
    assert log_alpha.grad is not None and log_alpha.grad.item() == pytest.approx(-1.0)  # descent raises α
    log_alpha.grad = None
    sac_losses.temperature_loss(log_alpha, T([0.0, 0.0]), target_entropy=-1.0).backward()  # entropy above target
    assert log_alpha.grad.item() == pytest.approx(1.0)  # descent lowers α


def test_smoothed_target_action_respects_noise_clip_and_bounds() -> None:
    torch.manual_seed(0)
    centre = torch.zeros(10_000, 2)
    a = td3_losses.smoothed_target_action(centre, noise_std=10.0, noise_clip=0.3)
    assert a.abs().max().item() == pytest.approx(0.3)
    edge = torch.full((10_000, 2), 0.9)
    b = td3_losses.smoothed_target_action(edge, noise_std=10.0, noise_clip=0.5)
    assert b.max().item() == 1.0 and b.min().item() == pytest.approx(0.4)
    torch.testing.assert_close(td3_losses.smoothed_target_action(edge, 0.0, 0.5), edge)
