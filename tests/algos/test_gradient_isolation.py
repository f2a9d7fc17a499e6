"""Gradient isolation inside SAC/TD3 updates, observed on the real `update` code path.

Every optimizer's `step` is wrapped to snapshot all gradients (and CrossQ's batch-renorm statistics) at
the moment it runs. Each loss zeroes only its own gradients before `backward`, so any gradient that leaks
into another module's parameters shows up as a change between two snapshots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.algos.td3 import TD3, TD3Config
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch
from robot_rl.nets.critics import EnsembleBatchRenorm

Snapshot = dict[str, list[torch.Tensor | None]]


class StepRecorder:
    """Wraps `opt.step` of each named optimizer; records (name, snapshot of `tensors`) per call."""

    def __init__(
        self,
        opts: dict[str, torch.optim.Optimizer],
        grads_of: dict[str, list[torch.Tensor]],
        buffers: list[torch.Tensor] | None = None,
    ) -> None:
        self.grads_of, self.buffers = grads_of, buffers or []
        self.events: list[tuple[str, Snapshot, list[torch.Tensor]]] = []
        for name, opt in opts.items():
            original = opt.step

            def step(*args: Any, _name: str = name, _orig: Callable[..., Any] = original, **kw: Any) -> Any:
                self.events.append((_name, self.grads(), [b.detach().clone() for b in self.buffers]))
                return _orig(*args, **kw)

            opt.step = step  # type: ignore[method-assign]

    def grads(self) -> Snapshot:
        return {g: [None if p.grad is None else p.grad.detach().clone() for p in ps] for g, ps in self.grads_of.items()}

    def names(self) -> list[str]:
        return [e[0] for e in self.events]


def _same(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> bool:
    return all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y)) for x, y in zip(a, b)
    )


def _nonzero(grads: list[torch.Tensor | None]) -> bool:
    return any(g is not None and bool(g.abs().sum() > 0) for g in grads)


def _batches(make_batch: Callable[..., Batch[torch.Tensor]], spec: PolicySpec, n: int) -> list[Batch[torch.Tensor]]:
    return [make_batch(spec, batch_size=32, seed=i) for i in range(n)]


def _check_isolation(rec: StepRecorder, owner: dict[str, str]) -> None:
    """At each optimizer step, every gradient group it does not own equals what that group's owner left."""
    last: dict[str, list[torch.Tensor | None]] = {g: [None] * len(ps) for g, ps in rec.grads_of.items()}
    for opt_name, snap, _ in rec.events:
        own = owner[opt_name]
        assert _nonzero(snap[own]), f"{opt_name} step ran without gradients for {own}"
        for group, grads in snap.items():
            if group != own:
                assert _same(grads, last[group]), f"the {opt_name} loss leaked gradients into {group}"
        last[own] = snap[own]


@pytest.mark.parametrize("recipe", ["classic", "crossq"])
def test_sac_losses_only_reach_their_own_parameters(
    recipe: str, pendulum_spec: PolicySpec, make_batch: Callable[..., Batch[torch.Tensor]]
) -> None:
    torch.manual_seed(0)
    cfg = SACConfig.preset(recipe).replace(actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=32, utd_ratio=6)
    sac = SAC(pendulum_spec, cfg)
    rec = StepRecorder(
        {"critic": sac.critic_opt, "actor": sac.actor_opt, "alpha": sac.alpha_opt},
        {"critic": list(sac.critic.parameters()), "actor": list(sac.actor.parameters()), "alpha": [sac.log_alpha]},
    )
    sac.update(iter(_batches(make_batch, pendulum_spec, 6)))
    # critic → actor → temperature, the actor every `policy_delay` critic steps
    per_critic = (
        ["critic", "actor", "alpha"] if recipe == "classic" else ["critic", "critic", "critic", "actor", "alpha"]
    )
    expected = per_critic * 6 if recipe == "classic" else per_critic * 2
    assert rec.names() == expected
    _check_isolation(rec, {"critic": "critic", "actor": "actor", "alpha": "alpha"})


def test_sac_optimizers_hold_disjoint_parameter_sets(pendulum_spec: PolicySpec, tiny_sac: SACConfig) -> None:
    sac = SAC(pendulum_spec, tiny_sac)

    def ids(opt: torch.optim.Optimizer) -> set[int]:
        return {id(p) for g in opt.param_groups for p in g["params"]}

    assert ids(sac.actor_opt) == {id(p) for p in sac.actor.parameters()}
    assert ids(sac.critic_opt) == {id(p) for p in sac.critic.parameters()}
    assert ids(sac.alpha_opt) == {id(sac.log_alpha)}


def test_crossq_batch_renorm_stats_move_in_critic_step_only(
    pendulum_spec: PolicySpec, make_batch: Callable[..., Batch[torch.Tensor]]
) -> None:
    torch.manual_seed(0)
    cfg = SACConfig.preset("crossq").replace(actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=32, utd_ratio=6)
    sac = SAC(pendulum_spec, cfg)
    assert sac.critic_target is None
    norms = [m for m in sac.critic.modules() if isinstance(m, EnsembleBatchRenorm)]
    assert len(norms) == 3  # input + two hidden layers
    stats = [t for m in norms for t in (m.running_mean, m.running_var)]
    counters = [m.steps for m in norms]
    initial = [t.clone() for t in stats]
    rec = StepRecorder({"critic": sac.critic_opt, "actor": sac.actor_opt, "alpha": sac.alpha_opt}, {}, stats + counters)
    sac.update(iter(_batches(make_batch, pendulum_spec, 6)))

    previous_critic = initial
    critic_steps = 0
    n = len(stats)
    for name, _, buffers in rec.events:
        running, steps = buffers[:n], buffers[n:]
        if name == "critic":
            critic_steps += 1
            assert all(not torch.equal(a, b) for a, b in zip(running, previous_critic)), "critic step left stats"
            assert all(int(s) == critic_steps for s in steps)  # one joint forward per critic step
            previous_critic = running
        else:  # actor/temperature: the critic ran in eval mode, statistics untouched
            assert all(torch.equal(a, b) for a, b in zip(running, previous_critic)), f"{name} step moved stats"
            assert all(int(s) == critic_steps for s in steps)
    assert critic_steps == 6 and sac.num_updates == 6
    assert sac.critic.training, "critic must be back in train mode after the actor step"
    final = [m.running_mean for m in norms]
    assert all(torch.equal(a, b) for a, b in zip(final, previous_critic[0::2]))


def test_td3_losses_only_reach_their_own_parameters(
    pendulum_spec: PolicySpec, make_batch: Callable[..., Batch[torch.Tensor]]
) -> None:
    torch.manual_seed(0)
    td3 = TD3(pendulum_spec, TD3Config(actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=32, utd_ratio=6))
    rec = StepRecorder(
        {"critic": td3.critic_opt, "actor": td3.actor_opt},
        {"critic": list(td3.critic.parameters()), "actor": list(td3.actor.parameters())},
    )
    td3.update(iter(_batches(make_batch, pendulum_spec, 6)))
    assert rec.names() == ["critic", "critic", "actor"] * 3
    _check_isolation(rec, {"critic": "critic", "actor": "actor"})
    assert all(not p.requires_grad for p in td3.critic_target.module.parameters())
    assert all(p.requires_grad for p in td3.critic.parameters())  # re-enabled after the actor loss


def test_td3_targets_move_only_on_delayed_actor_steps(
    pendulum_spec: PolicySpec, make_batch: Callable[..., Batch[torch.Tensor]]
) -> None:
    torch.manual_seed(0)
    td3 = TD3(pendulum_spec, TD3Config(actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=32, policy_delay=2))

    def targets() -> list[torch.Tensor]:
        mods = (td3.actor_target.module, td3.critic_target.module)
        return [p.detach().clone() for m in mods for p in m.parameters()]

    def actor() -> list[torch.Tensor]:
        return [p.detach().clone() for p in td3.actor.parameters()]

    t0, a0 = targets(), actor()
    td3.update(iter([make_batch(pendulum_spec, seed=0)]))  # update 1: critic only
    assert all(torch.equal(x, y) for x, y in zip(targets(), t0))
    assert all(torch.equal(x, y) for x, y in zip(actor(), a0))
    td3.update(iter([make_batch(pendulum_spec, seed=1)]))  # update 2: critic, actor, targets
    assert all(not torch.equal(x, y) for x, y in zip(targets(), t0))
    assert all(not torch.equal(x, y) for x, y in zip(actor(), a0))
