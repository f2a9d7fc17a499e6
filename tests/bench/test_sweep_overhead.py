"""bench/sweep_overhead.py's pure parts: the rounds of trials, the per-size and fitted overheads, and the markdown
(every figure from the JSON). No Ray, no training."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.bench.bench_loader import load_bench

DATA = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("sweep_overhead")


def _rows() -> list[dict[str, Any]]:
    """Two rounds of N = 2 and 6 on 2 slots: direct = 5 + 20 s per round of trials, sweep = 15 + 23 s, +-1 s noise
    that cancels over the rounds."""
    rows = []
    for rnd, noise in ((0, 1.0), (1, -1.0)):
        for n, rounds_of_trials in ((2, 1), (6, 3)):
            rows.append({"round": rnd, "trials": n, "mode": "direct", "wall_s": 5 + 20 * rounds_of_trials + noise,
                         "train_wall_s": [18.0] * n})  # fmt: skip
            rows.append({"round": rnd, "trials": n, "mode": "sweep", "wall_s": 15 + 23 * rounds_of_trials - noise,
                         "train_wall_s": [19.8] * n})  # fmt: skip
    return rows


def test_rounds_of_trials_fill_every_slot_first(bench: ModuleType) -> None:
    assert [bench.waves(n, 2) for n in (1, 2, 3, 6)] == [1, 1, 2, 3]
    assert bench.waves(5, 1) == 5


def test_overheads_are_split_into_a_fixed_cost_and_a_cost_per_round(bench: ModuleType) -> None:
    s = bench.summarize(_rows(), parallel=2)
    assert s["fit"]["direct"] == {"fixed_s": 5.0, "per_wave_s": 20.0}
    assert s["fit"]["sweep"] == {"fixed_s": 15.0, "per_wave_s": 23.0}
    assert s["fixed_overhead_s"] == 10.0 and s["per_trial_slot_overhead_s"] == 3.0
    two, six = s["per_size"]
    assert (two["trials"], two["waves"], two["direct_wall_s"], two["sweep_wall_s"]) == (2, 1, 25.0, 38.0)
    assert two["extra_per_trial_s"] == 6.5 and six["extra_per_trial_s"] == round((84 - 65) / 6, 2)
    assert six["sweep_over_direct"] == round(84 / 65, 3)
    assert s["train_wall_s_mean"] == {"direct": 18.0, "sweep": 19.8}
    assert s["round_spread_s"] == 1.0  # every cell's two rounds lie 1 s either side of their mean
    one_size = bench.summarize([r for r in _rows() if r["trials"] == 2], parallel=2)
    assert one_size["fit"] == {} and "fixed_overhead_s" not in one_size  # one point fits no line


def _report(bench: ModuleType) -> dict[str, Any]:
    config = {"algo": "sac", "env": "Pendulum-v1", "sizes": [2, 6], "parallel": 2, "rounds": 2,
              "total_steps": 1500, "learning_starts": 500, "eval_episodes": 2}  # fmt: skip
    return {
        "command": "python bench/sweep_overhead.py",
        "config": config,
        "machine": {"cpu_model": "Test CPU", "logical_cpus": 2, "python": "3.11"},
        "runs": _rows(),
        "summary": bench.summarize(_rows(), parallel=2),
    }


def test_markdown_is_computed_from_the_json(bench: ModuleType, tmp_path: Path) -> None:
    report = _report(bench)
    md = bench.markdown(report)
    assert report["command"] in md.split("```")[1]
    assert "| 2 | 1 | 25.0 | 38.0 | 1.52× | +6.5 |" in md
    assert "| 6 | 3 | 65.0 | 84.0 | 1.29× | +3.2 |" in md
    assert "| direct | 5.0 | 20.0 |" in md and "| sweep | 15.0 | 23.0 |" in md
    assert "**A sweep costs +10.0 s once**" in md
    assert "**and +3.0 s per round of trials** (a cost beyond the rounds' ±1.0 s spread)" in md
    within = {**report["summary"], "per_trial_slot_overhead_s": -0.5}
    assert "**and nothing measurable per round of trials** (-0.5 s, inside the ±1.0 s" in bench.per_round_words(within)
    saving = {**report["summary"], "per_trial_slot_overhead_s": -2.5}
    assert "(a saving beyond the rounds' ±1.0 s spread)" in bench.per_round_words(saving)
    assert "18.0 s as a plain run, 19.8 s as a Tune trial (1.10×)" in md
    assert "`sac` on `Pendulum-v1`, 1,500 env steps each (500 before learning)" in md
    (tmp_path / "in.json").write_text(json.dumps(report))
    assert bench.main(["--from-json", str(tmp_path / "in.json"), "--out-dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "sweep_overhead.md").read_text() == md


def test_committed_markdown_is_rendered_from_its_json(bench: ModuleType, tmp_path: Path) -> None:
    if not (DATA / "sweep_overhead.json").exists():
        pytest.fail("docs/benchmarks/sweep_overhead.json is missing: run bench/sweep_overhead.py")
    assert bench.main(["--from-json", str(DATA / "sweep_overhead.json"), "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "sweep_overhead.md").read_text() == (DATA / "sweep_overhead.md").read_text()
