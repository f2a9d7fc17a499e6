"""The batched critic ensemble (one matmul per layer for all members) is the same function as separate critics:
same outputs and the same gradients for every member's weights and for the action (what the actor loss uses)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robot_rl.nets.critics import CriticEnsemble
from robot_rl.nets.mlp import EnsembleLinear, mlp


def _separate_critics(ens: CriticEnsemble) -> list[nn.Sequential]:
    """Plain `nn.Linear` critics holding member i's weights of `ens` (no normalization layers)."""
    linears = [m for m in ens.net if isinstance(m, EnsembleLinear)]
    dims = [lin.weight.shape[1] for lin in linears] + [1]
    critics = []
    for i in range(ens.ensemble_size):
        net = mlp(dims[0], dims[1:-1], 1)
        plain = [m for m in net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin, p in zip(linears, plain, strict=True):
                p.weight.copy_(lin.weight[i].T)  # EnsembleLinear stores [in, out]; nn.Linear [out, in]
                p.bias.copy_(lin.bias[i, 0])
        critics.append(net)
    return critics


@pytest.mark.parametrize("members", [2, 5])
def test_batched_ensemble_equals_separate_critics_in_outputs_and_gradients(members: int) -> None:
    torch.manual_seed(0)
    obs_dim, act_dim, batch = 11, 3, 64
    ens = CriticEnsemble(obs_dim, act_dim, (32, 32), ensemble_size=members).double()
    critics = [c.double() for c in _separate_critics(ens)]
    obs = torch.randn(batch, obs_dim, dtype=torch.float64)
    act_a = torch.rand(batch, act_dim, dtype=torch.float64).mul(2).sub(1).requires_grad_(True)
    act_b = act_a.detach().clone().requires_grad_(True)

    q = ens(obs, act_a)
    q_sep = torch.stack([c(torch.cat([obs, act_b], -1)).squeeze(-1) for c in critics])
    assert q.shape == (members, batch)
    torch.testing.assert_close(q, q_sep, rtol=1e-12, atol=1e-12)

    weights = torch.randn(members, batch, dtype=torch.float64)  # a different loss weight per member and row
    (q * weights).sum().backward()
    (q_sep * weights).sum().backward()
    assert act_a.grad is not None and act_b.grad is not None
    torch.testing.assert_close(act_a.grad, act_b.grad, rtol=1e-10, atol=1e-12)
    linears = [m for m in ens.net if isinstance(m, EnsembleLinear)]
    for i, critic in enumerate(critics):
        plain = [m for m in critic if isinstance(m, nn.Linear)]
        for lin, p in zip(linears, plain, strict=True):
            assert lin.weight.grad is not None and lin.bias.grad is not None
            assert p.weight.grad is not None and p.bias.grad is not None
            torch.testing.assert_close(lin.weight.grad[i].T, p.weight.grad, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(lin.bias.grad[i, 0], p.bias.grad, rtol=1e-10, atol=1e-12)


def test_members_are_independent_a_loss_on_one_member_moves_no_other() -> None:
    torch.manual_seed(1)
    ens = CriticEnsemble(4, 2, (16,), ensemble_size=3)
    q = ens(torch.randn(8, 4), torch.rand(8, 2))
    q[1].sum().backward()
    for lin in (m for m in ens.net if isinstance(m, EnsembleLinear)):
        assert lin.weight.grad is not None
        norms = lin.weight.grad.flatten(1).norm(dim=1)
        assert norms[1] > 0 and norms[0] == 0 and norms[2] == 0
