"""The residual-magnitude penalty (`residual_l2`, TD3+BC's normalized actor objective with the base as the behaviour
policy): off it changes nothing, on it pulls a residual the critic does not pay for back to zero, and its pull does
not depend on the reward's scale."""

from __future__ import annotations

import pytest
import torch

from robot_rl.algos.registry import make_algorithm
from robot_rl.algos.residual import ResidualConfig, ResidualSACConfig
from robot_rl.algos.residual.losses import anchored_actor_loss
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch

OBS, A = 4, 2
SPEC = PolicySpec(ObservationSpec.flat(OBS + A), ActionSpec(low=(-1.0, -1.0), high=(1.0, 1.0)), control_hz=50.0)


def test_without_weight_the_learners_own_loss_is_returned_unchanged() -> None:
    q = torch.randn(2, 8) * 50
    policy_loss = -q[0].mean()
    r = torch.rand(8, A)
    assert anchored_actor_loss(policy_loss, q, r, 0.0) is policy_loss


def test_the_penalty_pulls_the_residual_to_zero_and_ignores_the_rewards_scale() -> None:
    r = torch.full((8, A), 0.5, requires_grad=True)
    q = (10.0 + 0.0 * r.sum(-1)).expand(2, 8)  # a flat critic: no correction pays
    anchored_actor_loss(-q[0].mean(), q, r, 1.0).backward()
    assert r.grad is not None and (r.grad > 0).all()  # descent shrinks the residual
    # A critic that does pay: Q rises with r. Its pull relative to the penalty is the same at any reward scale.
    grads = []
    for scale in (1.0, 1000.0):
        r2 = torch.full((8, A), 0.1, requires_grad=True)
        q2 = (scale * (5.0 + r2.sum(-1))).unsqueeze(0).expand(2, 8)
        anchored_actor_loss(-q2[0].mean(), q2, r2, 0.1).backward()
        assert r2.grad is not None
        grads.append(r2.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def _batch(seed: int, n: int = 64) -> Batch[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs, next_obs = torch.randn(n, OBS + A, generator=g), torch.randn(n, OBS + A, generator=g)
    obs[:, -A:] = obs[:, -A:].clamp(-1, 1)
    next_obs[:, -A:] = next_obs[:, -A:].clamp(-1, 1)
    action = obs[:, -A:].clone()  # the base's own actions: nothing in the data says a correction pays
    zeros = torch.zeros(n)
    return Batch(obs, action, zeros - 1.0, next_obs, zeros, zeros)


@pytest.mark.parametrize("cfg_type", [ResidualConfig, ResidualSACConfig])
def test_a_strong_anchor_keeps_the_residual_smaller_than_without(cfg_type: type[ResidualConfig]) -> None:
    """Same data, same seeds: with the anchor the trained residual's mean size stays below the unanchored one's."""
    sizes = []
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        cfg = cfg_type(actor_hidden=(32,), critic_hidden=(32,), policy_delay=1, residual_l2=weight, actor_lr=1e-3)
        algo = make_algorithm("residual" if cfg_type is ResidualConfig else "residual_sac", SPEC, cfg)
        for i in range(150):
            algo.update(iter([_batch(i)]))
        obs = _batch(999).obs
        with torch.no_grad():
            xn = algo.normalizer(obs)  # type: ignore[attr-defined]
            actor = algo.actor  # type: ignore[attr-defined]
            pre = actor.mean_and_log_std(xn)[0] if cfg_type is ResidualSACConfig else actor(xn)
            mean_residual = torch.tanh(pre)
        sizes.append(float(mean_residual.abs().mean()))
    assert sizes[1] < 0.5 * sizes[0], sizes


def test_a_negative_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="residual_l2"):
        ResidualConfig(residual_l2=-1.0)
