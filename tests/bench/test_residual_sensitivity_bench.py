"""bench/residual_sensitivity.py's pure parts: how an episode is classed, and the markdown's verdicts, every one
computed from the JSON. No simulation."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.bench.bench_loader import load_bench

N = 40


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("residual_sensitivity")


def _cond(kind: str, value: float, successes: int, final_m: float = 0.05) -> dict[str, Any]:
    ok = [i < successes for i in range(N)]
    return {
        "kind": kind, "value": value, "success_rate": successes / N, "success": ok,
        "closest_m": [0.01 if s else 0.055 for s in ok], "final_m": [0.02 if s else final_m for s in ok],
    }  # fmt: skip


def _report(conds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "command": "python bench/residual_sensitivity.py",
        "config": {"env": "robot_rl/PandaPush-v0", "expert_episodes": 10, "flow_updates": 6000,
                   "base_final_success": 0.43, "demo_success_rate": 1.0, "eval_episodes": N, "eval_seed": 999,
                   "success_radius_m": 0.04},
        "machine": {"cpu_model": "cpu", "logical_cpus": 2},
        "conditions": conds,
    }  # fmt: skip


def test_episode_classes(bench: ModuleType) -> None:
    assert bench.episode_outcome([0.1, 0.03], True, 0.04) == "success"
    assert bench.episode_outcome([0.1, 0.02, 0.06], False, 0.04) == "reached-then-lost"
    assert bench.episode_outcome([0.1, 0.07], False, 0.04) == "near miss"
    assert bench.episode_outcome([0.1, 0.09], False, 0.04) == "far miss"


def test_noise_insensitive_base_and_the_smallest_harmful_correction(bench: ModuleType) -> None:
    conds = [_cond("noise", 1.0, 17), _cond("noise", 0.0, 18), _cond("offset", 0.005, 16),
             _cond("offset", 0.02, 4, final_m=0.12), _cond("iid", 0.05, 1)]  # fmt: skip
    md = bench.markdown(_report(conds))
    assert "| noise × 1 (the base) | 42% | – |" in md
    assert "| offset 0.02 | 10% | -32.5 ±" in md
    assert "spans 2.5 points" in md and "does not depend on its noise" in md
    assert "A constant correction of size 0.02 already costs 32 points" in md  # 0.005 costs 2.5: within noise
    assert "Per-step noise of size 0.05 already costs 40 points" in md
    assert "(`residual_scale` 0.2) is 10× that" in md
    # the base's 23 failures: closest 5.5 cm, final 5 cm -> near misses (within 8 cm), none reached the goal
    assert "23 of 40 episodes" in md and "0 reached the goal and lost it, 23 ended within 8 cm" in md


def test_a_base_whose_success_depends_on_its_noise(bench: ModuleType) -> None:
    md = bench.markdown(_report([_cond("noise", 1.0, 17), _cond("noise", 0.0, 34)]))
    assert "the noise matters" in md
