"""SAC's `compile_update`: the compiled update computes what the eager one does (within float32 rounding), and a
compiler failure falls back to the eager function, counted and reported, with results equal to eager's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from robot_rl.algos.sac.algorithm import SAC
from robot_rl.algos.sac.config import SACConfig
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch

SPEC = PolicySpec(ObservationSpec.flat(5), ActionSpec(low=(-1.0, -1.0), high=(1.0, 1.0)), control_hz=10.0)


def _batches(seed: int = 0, n: int = 4, size: int = 32) -> list[Batch[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        Batch(
            obs=torch.randn(size, 5, generator=g),
            action=torch.rand(size, 2, generator=g) * 2 - 1,
            reward=torch.randn(size, generator=g),
            next_obs=torch.randn(size, 5, generator=g),
            terminated=(torch.rand(size, generator=g) < 0.1).float(),
            truncated=torch.zeros(size),
        )
        for _ in range(n)
    ]


def _trained(compile_update: bool, batches: list[Batch[torch.Tensor]]) -> tuple[SAC, list[dict[str, float]]]:
    torch.manual_seed(0)
    algo = SAC(SPEC, SACConfig(actor_hidden=(32, 32), critic_hidden=(32, 32), compile_update=compile_update))
    it: Iterator[Batch[torch.Tensor]] = iter(batches)
    stats = [dict(algo.update(it).values) for _ in batches]
    return algo, stats


def _params(algo: SAC) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in algo.state_tensors().items() if not k.startswith("optim")}


@pytest.mark.slow
def test_the_compiled_update_matches_the_eager_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch._inductor.config as inductor_config

    # Inductor draws its own random numbers by default; the test asks for torch's, so both runs see the same noise.
    monkeypatch.setattr(inductor_config, "fallback_random", True)
    batches = _batches()
    eager, eager_stats = _trained(False, batches)
    compiled, compiled_stats = _trained(True, batches)
    assert compiled._critic_terms.compiled and compiled._actor_terms.compiled, compiled._critic_terms.fallback_reason
    assert compiled_stats[-1]["compile/sac_critic/active"] == 1.0
    for e, c in zip(eager_stats, compiled_stats, strict=True):
        for key in ("loss/critic", "loss/actor", "q/mean", "alpha"):
            assert c[key] == pytest.approx(e[key], rel=1e-4, abs=1e-5), key
    pe, pc = _params(eager), _params(compiled)
    assert pe.keys() == pc.keys()
    for key in pe:
        torch.testing.assert_close(pc[key], pe[key], rtol=1e-4, atol=1e-5, msg=key)
    # and training moved the weights (the comparison is not between two untouched networks)
    torch.manual_seed(0)
    fresh = _params(SAC(SPEC, SACConfig(actor_hidden=(32, 32), critic_hidden=(32, 32))))
    assert not torch.equal(fresh["actor/body.0.weight"], pe["actor/body.0.weight"])


def test_a_compiler_failure_falls_back_to_eager_counted_and_equal(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_compile(fn: object, **_: object) -> object:
        def fails(*args: object, **kwargs: object) -> object:
            raise RuntimeError("no C++ compiler here\nsecond line")

        return fails

    monkeypatch.setattr(torch, "compile", broken_compile)
    batches = _batches(seed=1)
    eager, _ = _trained(False, batches)
    fell_back, stats = _trained(True, batches)
    assert fell_back._critic_terms.fallback_reason == "RuntimeError: no C++ compiler here"
    assert stats[-1]["compile/sac_critic/active"] == 0.0 and stats[-1]["compile/sac_critic/fallbacks"] == 1
    assert stats[-1]["compile/sac_actor/fallbacks"] == 1  # each function falls back once, then stays eager
    pe, pf = _params(eager), _params(fell_back)
    for key in pe:
        assert torch.equal(pe[key], pf[key]), key  # eager after the fallback: bit-identical to an eager run
