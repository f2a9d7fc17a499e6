"""LAC through its public API: gradient isolation, multipliers, checkpoint round trip, the deployable policy, the
finite-horizon batches."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.algos.lac import LAC, LACConfig
from robot_rl.algos.registry import make_algorithm
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train.batches import requested_layout, sample_batches, torch_batches

SMALL = LACConfig(actor_hidden=(16, 16), critic_hidden=(16, 16), critic_features=8, batch_size=32)
SPEC = PolicySpec(ObservationSpec.flat(3), ActionSpec(low=(-2.0,), high=(2.0,)), control_hz=20.0)


def _batch(seed: int = 0, b: int = 32, cost_sum: bool = False) -> Batch[torch.Tensor]:
    rng = np.random.default_rng(seed)

    def f32(x: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, np.float32))

    cost = rng.uniform(0, 1, b)
    return Batch(
        obs=f32(rng.normal(size=(b, 3))),
        action=f32(rng.uniform(-1, 1, (b, 1))),
        reward=f32(-cost),
        next_obs=f32(rng.normal(size=(b, 3))),
        terminated=f32(rng.uniform(size=b) < 0.1),
        truncated=f32(np.zeros(b)),
        cost=f32(cost),
        cost_sum=f32(cost * 5) if cost_sum else None,
    )


def _lac(cfg: LACConfig = SMALL, seed: int = 0) -> LAC:
    torch.manual_seed(seed)
    algo = make_algorithm("lac", SPEC, cfg)
    assert isinstance(algo, LAC)
    return algo


class StepRecorder:
    """Snapshots every parameter group's gradients at each optimizer step (as tests/algos/test_gradient_isolation
    does for SAC): a loss that leaks into another group's parameters shows up as a change between snapshots."""

    def __init__(self, algo: LAC) -> None:
        self.groups: dict[str, list[torch.Tensor]] = {
            "critic": list(algo.critic.parameters()),
            "actor": list(algo.actor.parameters()),
            "alpha": [algo.log_alpha],
            "lambda": [algo.log_lambda],
        }
        self.events: list[tuple[str, dict[str, list[torch.Tensor | None]]]] = []
        for name, opt in {
            "critic": algo.critic_opt,
            "actor": algo.actor_opt,
            "alpha": algo.alpha_opt,
            "lambda": algo.lambda_opt,
        }.items():
            original = opt.step

            def step(*args: Any, _name: str = name, _orig: Callable[..., Any] = original, **kw: Any) -> Any:
                snap = {
                    g: [None if p.grad is None else p.grad.detach().clone() for p in ps]
                    for g, ps in self.groups.items()
                }
                self.events.append((_name, snap))
                return _orig(*args, **kw)

            opt.step = step  # type: ignore[method-assign]


def _same(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> bool:
    return all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y)) for x, y in zip(a, b)
    )


@pytest.mark.parametrize("horizon", [0, 5])
def test_each_loss_reaches_only_its_own_parameters(horizon: int) -> None:
    algo = _lac(SMALL.replace(horizon=horizon, utd_ratio=3))
    rec = StepRecorder(algo)
    target_before = [p.clone() for p in algo.critic_target.module.parameters()]
    algo.update(iter([_batch(i, cost_sum=horizon > 0) for i in range(3)]))
    assert [e[0] for e in rec.events] == ["critic", "actor", "alpha", "lambda"] * 3  # critic → actor → α, λ
    last: dict[str, list[torch.Tensor | None]] = {g: [None] * len(ps) for g, ps in rec.groups.items()}
    for owner, snap in rec.events:
        assert any(g is not None and bool(g.abs().sum() > 0) for g in snap[owner]), f"{owner} step without gradient"
        for group, grads in snap.items():
            if group != owner:
                assert _same(grads, last[group]), f"the {owner} loss leaked gradients into {group}"
        last[owner] = snap[owner]
    assert all(not p.requires_grad for p in algo.critic_target.module.parameters())
    assert all(p.requires_grad for p in algo.critic.parameters())  # re-enabled after the actor loss
    moved = [not torch.equal(a, b) for a, b in zip(target_before, algo.critic_target.module.parameters())]
    assert all(moved)  # polyak step every update


def test_optimizers_hold_disjoint_parameter_sets() -> None:
    algo = _lac()

    def ids(opt: torch.optim.Optimizer) -> set[int]:
        return {id(p) for g in opt.param_groups for p in g["params"]}

    assert ids(algo.actor_opt) == {id(p) for p in algo.actor.parameters()}
    assert ids(algo.critic_opt) == {id(p) for p in algo.critic.parameters()}
    assert ids(algo.alpha_opt) == {id(algo.log_alpha)} and ids(algo.lambda_opt) == {id(algo.log_lambda)}


def test_update_reports_namespaced_finite_stats() -> None:
    stats = _lac().update(iter([_batch()]))
    expected = {"loss/critic", "loss/actor", "loss/alpha", "loss/lambda", "lyapunov/violation", "lyapunov/value"}
    assert expected | {"lambda", "alpha", "lyapunov/violated_fraction", "policy/entropy"} <= set(stats.values)
    assert stats.num_updates == 1 and stats.non_finite() == []


def test_multiplier_follows_the_mean_violation_and_stays_clipped() -> None:
    # α₃ = 50 on costs ~0.5 makes every sampled decrease condition fail ...
    violated = _lac(SMALL.replace(init_lambda=0.5, alpha3=50.0, lambda_lr=1e-2))
    for i in range(5):
        violated.update(iter([_batch(i)]))
    assert float(violated.multiplier()) > 0.5

    # ... and a step from far out (a large sum of squares) to the origin (a small one) satisfies every one.
    held = _lac(SMALL.replace(init_lambda=0.5, alpha3=1.0, lambda_lr=1e-2))
    for i in range(5):
        b = _batch(i)
        b = b._replace(obs=b.obs * 100, next_obs=torch.zeros_like(b.next_obs))
        stats = held.update(iter([b]))
        assert stats.values["lyapunov/violation"] < 0 and stats.values["lyapunov/violated_fraction"] == 0
    assert float(held.multiplier()) < 0.5

    capped = _lac(SMALL.replace(init_lambda=1.0, lambda_max=1.0, alpha3=50.0, lambda_lr=1e-1))
    for i in range(5):
        capped.update(iter([_batch(i)]))
    assert float(capped.multiplier()) == 1.0 and float(capped.log_lambda.detach()) <= 1e-7  # no wind-up above the clip


def test_a_batch_without_cost_is_refused() -> None:
    with pytest.raises(ValueError, match="cost"):
        _lac().update(iter([_batch()._replace(cost=None)]))
    with pytest.raises(ValueError, match="cost_sum"):
        _lac(SMALL.replace(horizon=5)).update(iter([_batch()]))


def test_finite_horizon_trains_towards_the_cost_sum_not_the_td_target() -> None:
    algo = _lac(SMALL.replace(horizon=5, critic_lr=1e-2))
    b = _batch(0, cost_sum=True)
    for _ in range(300):
        algo.update(iter([b]))
    with torch.no_grad():
        l_value = algo.critic(algo.normalizer(b.obs), b.action)
    assert b.cost_sum is not None
    assert float((l_value - b.cost_sum).abs().mean()) < 0.1 * float(b.cost_sum.mean())


def test_state_round_trip_continues_bit_identically() -> None:
    a = _lac(seed=0)
    for i in range(4):
        torch.manual_seed(100 + i)
        a.update(iter([_batch(i)]))
    tensors = {k: v.clone() for k, v in a.state_tensors().items()}
    meta = json.loads(json.dumps(a.state_meta()))
    assert {"log_alpha", "log_lambda"} <= set(tensors) and any(k.startswith("optim/lambda/") for k in tensors)

    b = _lac(seed=1)
    assert any(not torch.equal(b.state_tensors()[k], tensors[k]) for k in tensors if k.startswith("critic/"))
    b.load_state_tensors(tensors, meta)
    assert all(torch.equal(b.state_tensors()[k], tensors[k]) for k in tensors)
    assert b.num_updates == a.num_updates == 4

    batch = _batch(99)
    torch.manual_seed(7)
    stats_a = a.update(iter([batch]))
    torch.manual_seed(7)
    stats_b = b.update(iter([batch]))
    assert stats_a == stats_b
    assert all(torch.equal(a.state_tensors()[k], b.state_tensors()[k]) for k in tensors)


def test_policy_is_sacs_deployable_actor_mean_without_critic_or_multipliers() -> None:
    spec = PolicySpec(ObservationSpec.flat(5), ActionSpec(low=(-2.0, 0.0), high=(2.0, 10.0)), control_hz=10.0)
    torch.manual_seed(0)
    algo = make_algorithm("lac", spec, SMALL)
    obs = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32) * 5
    policy = algo.policy().eval()
    with torch.inference_mode():
        physical = policy(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(physical, spec.action.to_physical(algo.act(obs, deterministic=True)), atol=1e-5)
    names = list(policy.state_dict())
    assert not [k for k in names if "critic" in k or "target" in k or "alpha" in k or "lambda" in k]
    sampled = algo.act(np.zeros((7, 5), np.float32), deterministic=False)
    assert sampled.shape == (7, 2) and np.all(np.abs(sampled) <= 1.0) and len(set(sampled[:, 0].tolist())) > 1
    assert algo.act(np.zeros(5, np.float32), deterministic=False).shape == (2,)


def test_the_critic_is_a_sum_of_squares() -> None:
    algo = _lac()
    obs = torch.randn(4096, 3) * 100
    action = torch.rand(4096, 1) * 2 - 1
    with torch.no_grad():
        values = algo.critic(obs, action)
    assert values.shape == (4096,) and bool((values >= 0).all())


def _episode_buffer() -> ReplayBuffer:
    """Two episodes of costs 1, 2, 3, … : the first (rows 0-3) terminated, the second (rows 4-6) truncated."""
    buf = ReplayBuffer(16, 1, 1)
    obs = 0.0
    for i in range(7):
        terminated, truncated = i == 3, i == 6
        buf.add([obs], [0.0], 0.0, [obs + 1], terminated, truncated, cost=float(i + 1))
        obs = obs + 1 if not (terminated or truncated) else obs + 100
    return buf


def test_cost_sums_stay_within_the_episode_and_a_failure_is_absorbing() -> None:
    algo = _lac(SMALL.replace(horizon=3))
    layout = requested_layout(algo)
    assert layout.cost_horizon == 3 and layout.n_step == 1

    class FixedRng:
        def integers(self, low: int, high: int, size: int) -> np.ndarray:
            return np.arange(7)

    batch = next(torch_batches(sample_batches(_episode_buffer(), 7, FixedRng(), layout)))  # type: ignore[arg-type]
    assert batch.cost_sum is not None and batch.cost is not None
    # episode 1 (costs 1-4, terminated at 4): 1+2+3, 2+3+4, then 3+4 and 4 padded with the failure's cost 4
    # episode 2 (costs 5-7, truncated at 7): 5+6+7, then 6+7 and 7 (a time limit is not absorbing)
    np.testing.assert_array_equal(batch.cost_sum.numpy(), [6, 9, 11, 12, 18, 13, 7])
    np.testing.assert_array_equal(batch.cost.numpy(), np.arange(1, 8))  # the one-step columns are untouched
    np.testing.assert_array_equal(batch.next_obs.numpy()[:, 0], [1, 2, 3, 4, 104, 105, 106])


def test_the_default_layout_asks_for_no_cost_sums() -> None:
    assert requested_layout(_lac()).cost_horizon == 0
    batch = next(sample_batches(_episode_buffer(), 4, np.random.default_rng(0), requested_layout(_lac())))
    assert batch.cost_sum is None and batch.cost is not None and math.isfinite(float(batch.cost.sum()))
