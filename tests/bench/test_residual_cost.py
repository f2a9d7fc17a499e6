"""bench/residual_cost.py's pure summary and report (no training): per-round ratios to SAC, table rows."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _bench():  # type: ignore[no-untyped-def]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("bench.residual_cost")


def test_ratios_are_per_round_against_sac_and_the_markdown_shows_them(tmp_path: Path) -> None:
    bench = _bench()
    records = [
        {"round": 0, "learner": "sac", "env_steps_per_s": 100.0, "train_wall_s": 30.0, "load_avg_1m_before": 1.0},
        {"round": 0, "learner": "residual", "env_steps_per_s": 80.0, "train_wall_s": 37.5, "load_avg_1m_before": 1.0},
        {"round": 1, "learner": "sac", "env_steps_per_s": 50.0, "train_wall_s": 60.0, "load_avg_1m_before": 3.0},
        {"round": 1, "learner": "residual", "env_steps_per_s": 30.0, "train_wall_s": 100.0, "load_avg_1m_before": 3.0},
    ]
    summary = bench.summarize(records)
    assert summary["sac"]["ratio_to_sac_median"] == 1.0
    assert summary["residual"]["ratio_to_sac_median"] == 0.7  # median of 0.8 and 0.6, not 55 / 75
    report = {
        "command": "cmd --steps 10",
        "config": {"env": bench.ENV_ID, "steps": 10, "rounds": 2, "base": "expert", "learners": ["sac", "residual"]},
        "machine": {"cpu_model": "cpu", "logical_cpus": 2, "python": "3", "torch": "t", "torch_threads": 1},
        "runs": records,
        "summary": summary,
    }
    bench.write(report, tmp_path)
    md = (tmp_path / "residual_cost.md").read_text()
    assert "cmd --steps 10" in md and "| residual | 55.0 | 30.0–80.0 | 0.70 |" in md
    assert "above the core count" in md
    bench.main(["--from-json", str(tmp_path / "residual_cost.json"), "--out-dir", str(tmp_path / "again")])
    assert (tmp_path / "again" / "residual_cost.md").read_text() == md
