"""bench/distributed_collection.py's pure parts: the per-configuration summary (speed-up against the single process
of the same seed) and the markdown, every figure from the JSON. No Ray, no training."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.bench.bench_loader import load_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("distributed_collection")


def _run(actors: int, seed: int, steps_s: float, success: float) -> dict[str, Any]:
    return {
        "actors": actors, "seed": seed, "env_steps": 2000, "updates": 1000, "train_wall_s": 2000 / steps_s,
        "env_steps_per_s": steps_s, "updates_per_s": steps_s / 2, "final_success": success, "final_return": -5.0,
        "curve": [{"env_steps": 1000, "wall_s": 1000 / steps_s, "success_rate": 0.0, "mean_return": -20.0},
                  {"env_steps": 2000, "wall_s": 2000 / steps_s, "success_rate": success, "mean_return": -5.0}],
    }  # fmt: skip


def _report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "command": "python bench/distributed_collection.py --steps 2000",
        "config": {"task": "robot_rl/PandaReach-v0:pybullet", "steps": 2000, "learning_starts": 1000,
                   "eval_every": 1000, "eval_episodes": 4, "init_alpha": 0.1, "sync_mode": "throttle",
                   "push_every": 100, "block_steps": 100, "torch_threads": 1},
        "machine": {"cpu_model": "cpu", "logical_cpus": 2, "python": "3.11", "torch": "2", "ray": "2"},
        "env_probe": {"steps": 1000, "wall_s": 1.0, "env_steps_per_s": 1000.0},
        "runs": runs,
    }  # fmt: skip


def test_speedup_is_against_the_single_process_of_the_same_seed(bench: ModuleType) -> None:
    runs = [_run(0, 0, 50.0, 1.0), _run(0, 1, 100.0, 0.5), _run(2, 0, 60.0, 1.0), _run(2, 1, 100.0, 0.5)]
    by_actors = {s["actors"]: s for s in bench.summarize(runs)}
    assert by_actors[0]["speedup_vs_single"] == pytest.approx(1.0)
    # seed 0: 60/50 = 1.2, seed 1: 100/100 = 1.0 -> mean of the ratios 1.1 (not the ratio of the means, 80/75)
    assert by_actors[2]["speedup_vs_single"] == pytest.approx(1.1)
    assert by_actors[2]["env_steps_per_s"] == pytest.approx(80.0)
    assert by_actors[2]["final_success"] == pytest.approx(0.75)


def test_no_single_process_run_means_no_speedup(bench: ModuleType) -> None:
    (only,) = bench.summarize([_run(1, 0, 50.0, 1.0)])
    assert only["speedup_vs_single"] is None


def test_markdown_computes_the_ideal_speedup_from_the_env_probe(bench: ModuleType) -> None:
    # single: 50 steps/s = 20 ms per step; env alone 1 ms -> ideal 20 / 19 = 1.05x
    md = bench.markdown(_report([_run(0, 0, 50.0, 1.0), _run(2, 0, 55.0, 1.0)]))
    assert "| single process | 1 | 50.0 | 25.0 | 1.00× |" in md
    assert "| 2 Ray actors | 1 | 55.0 | 27.5 | 1.10× |" in md
    assert "runs 1.10× the single process's env steps/s" in md
    assert "20.0 ms per env step" in md and "1.00 ms" in md
    assert "from any number of actors is 1.05×" in md


def test_plot_and_files_are_written(bench: ModuleType, tmp_path: Path) -> None:
    bench.write(_report([_run(0, 0, 50.0, 1.0), _run(1, 0, 45.0, 0.9)]), tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "distributed_collection.json", "distributed_collection.md", "distributed_collection.png"
    }  # fmt: skip
