"""SAC/TD3 behaviour through their public API: bootstrapping flags, exact state round trip, the policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.algos.registry import make_algorithm
from robot_rl.algos.sac import SACConfig
from robot_rl.algos.sac import losses as sac_losses
from robot_rl.algos.td3 import TD3Config
from robot_rl.algos.td3 import losses as td3_losses
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch

SMALL = {"actor_hidden": (16, 16), "critic_hidden": (16, 16), "batch_size": 32}
KINDS: dict[str, tuple[str, Any]] = {
    "sac": ("sac", SACConfig(**SMALL)),  # type: ignore[arg-type]
    "crossq": ("sac", SACConfig.preset("crossq").replace(**SMALL, policy_delay=1)),
    "td3": ("td3", TD3Config(**SMALL, policy_delay=1)),  # type: ignore[arg-type]
}


def _algo(kind: str, spec: PolicySpec, seed: int = 0) -> Any:
    torch.manual_seed(seed)
    name, cfg = KINDS[kind]
    return make_algorithm(name, spec, cfg)


def _update(algo: Any, batch: Batch[torch.Tensor], seed: int) -> dict[str, float]:
    torch.manual_seed(seed)
    return dict(algo.update(iter([batch])).values)


def _assert_state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _assert_state_differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str) -> None:
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))


@pytest.mark.parametrize("kind", list(KINDS))
def test_truncation_does_not_change_the_update_but_termination_does(
    kind: str, pendulum_spec: PolicySpec, make_batch: Callable[..., Batch[torch.Tensor]]
) -> None:
    flags = np.arange(32) % 2  # half the rows flagged
    results = {}
    for label, term, trunc in [("plain", None, None), ("truncated", None, flags), ("terminated", flags, None)]:
        algo = _algo(kind, pendulum_spec)
        _update(algo, make_batch(pendulum_spec, seed=3, terminated=term, truncated=trunc), seed=11)
        results[label] = algo.state_tensors()
    _assert_state_equal(results["plain"], results["truncated"])  # truncation is not termination
    _assert_state_differs(results["plain"], results["terminated"], "critic/")


@pytest.mark.parametrize("kind", ["sac", "td3"])
def test_update_passes_terminated_not_truncated_to_the_target(
    kind: str, pendulum_spec: PolicySpec, make_batch: Callable[..., Batch[torch.Tensor]], monkeypatch: Any
) -> None:
    seen: list[torch.Tensor] = []
    module, fn_name = (sac_losses, "soft_td_target") if kind == "sac" else (td3_losses, "td_target")
    original = getattr(module, fn_name)

    def spy(reward: torch.Tensor, terminated: torch.Tensor, *args: Any) -> torch.Tensor:
        seen.append(terminated.clone())
        return original(reward, terminated, *args)

    monkeypatch.setattr(module, fn_name, spy)
    term = (np.arange(32) % 3 == 0).astype(np.float32)
    trunc = (np.arange(32) % 3 == 1).astype(np.float32)
    _update(_algo(kind, pendulum_spec), make_batch(pendulum_spec, terminated=term, truncated=trunc), seed=0)
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0].numpy(), term)


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_round_trip_continues_bit_identically(
    kind: str, pendulum_spec: PolicySpec, make_batch: Callable[..., Batch[torch.Tensor]]
) -> None:
    a = _algo(kind, pendulum_spec, seed=0)
    for i in range(4):
        _update(a, make_batch(pendulum_spec, seed=i), seed=100 + i)
    tensors = {k: v.clone() for k, v in a.state_tensors().items()}
    meta = json.loads(json.dumps(a.state_meta()))  # must survive JSON
    assert any(k.startswith("optim/") for k in tensors), "optimizer state must be part of the checkpoint"

    b = _algo(kind, pendulum_spec, seed=1)  # different initial weights
    _assert_state_differs(b.state_tensors(), tensors, "actor/")
    b.load_state_tensors(tensors, meta)
    _assert_state_equal(b.state_tensors(), tensors)
    assert b.num_updates == a.num_updates == 4

    batch = make_batch(pendulum_spec, seed=99)
    stats_a, stats_b = _update(a, batch, seed=7), _update(b, batch, seed=7)
    assert stats_a == stats_b
    _assert_state_equal(a.state_tensors(), b.state_tensors())


@pytest.mark.parametrize("kind", list(KINDS))
def test_policy_matches_deterministic_act_in_physical_units(kind: str) -> None:
    spec = PolicySpec(ObservationSpec.flat(5), ActionSpec(low=(-2.0, 0.0), high=(2.0, 10.0)), control_hz=10.0)
    algo = _algo(kind, spec)
    obs = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32) * 5
    policy = algo.policy().eval()
    with torch.inference_mode():
        physical = policy(torch.from_numpy(obs)).numpy()
    expected = spec.action.to_physical(algo.act(obs, deterministic=True))
    np.testing.assert_allclose(physical, expected, rtol=1e-5, atol=1e-5)
    assert np.all(physical >= spec.action.low_array) and np.all(physical <= spec.action.high_array)
    # the deployable module carries no critic, target or temperature (DESIGN principle 1)
    assert not [k for k in policy.state_dict() if "critic" in k or "target" in k or "alpha" in k]
    # and shares the learner's weights rather than copying them
    with torch.no_grad():
        next(iter(algo.actor.parameters())).add_(1.0)
        moved = policy(torch.from_numpy(obs)).numpy()
    assert not np.allclose(moved, physical)


@pytest.mark.parametrize("kind", list(KINDS))
def test_exploration_actions_are_normalized_with_the_right_shape(kind: str, pendulum_spec: PolicySpec) -> None:
    algo = _algo(kind, pendulum_spec)
    single = algo.act(np.zeros(3, np.float32), deterministic=False)
    many = algo.act(np.zeros((7, 3), np.float32), deterministic=False)
    assert single.shape == (1,) and many.shape == (7, 1)
    assert np.all(np.abs(many) <= 1.0)
    assert len(set(many[:, 0].tolist())) > 1  # stochastic
    det = algo.act(np.zeros((7, 3), np.float32), deterministic=True)
    assert len(set(det[:, 0].tolist())) == 1


def test_sac_update_reports_namespaced_finite_stats(
    pendulum_spec: PolicySpec, make_batch: Callable[..., Batch[torch.Tensor]]
) -> None:
    algo = _algo("sac", pendulum_spec)
    stats = algo.update(iter([make_batch(pendulum_spec)]))
    assert {"loss/critic", "loss/actor", "loss/alpha", "q/mean", "alpha", "policy/entropy"} <= set(stats.values)
    assert stats.num_updates == 1 and stats.non_finite() == []
