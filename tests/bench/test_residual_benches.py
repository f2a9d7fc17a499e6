"""bench/residual_push.py and bench/residual_sim2sim.py: their pure summaries, verdicts, merges and reports on
synthetic records (no training; the scripts' own runs are the benchmarks)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bench(name: str) -> Any:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(f"bench.{name}")


def _push_run(learner: str, seed: int, final: float, base: float | None) -> dict[str, Any]:
    curve = [{"env_steps": s, "wall_s": s / 50.0, "success_rate": final * s / 2000} for s in (1000, 2000)]
    return {
        "learner": learner,
        "seed": seed,
        "base": "" if base is None else ("flow" if learner == "dsrl" else "bc"),
        "base_success": base,
        "agent_steps": 2000,
        "env_steps": 2000,
        "train_wall_s": 40.0,
        "final_success": final,
        "curve": curve,
    }


def _push_data(runs: list[dict[str, Any]], command: str = "cmd") -> dict[str, Any]:
    return {
        "command": command,
        "env_id": "robot_rl/PandaPush-v0",
        "env_steps": 2000,
        "expert_episodes": 10,
        "eval_every": 1000,
        "eval_episodes": 5,
        "machine": "cpu",
        "runs": runs,
        "bases": {"bc-s0": {"success": 0.2}},
    }


def test_push_gain_is_over_each_seeds_own_base_and_the_target_is_judged(tmp_path: Path) -> None:
    bench = _bench("residual_push")
    runs = [
        _push_run("residual", 0, 0.7, 0.3),
        _push_run("residual", 1, 0.5, 0.4),
        _push_run("residual_sac", 0, 0.4, 0.3),
        _push_run("crossq", 0, 0.0, None),
    ]
    summary = bench.summarize(runs)
    assert summary["residual"]["gain_iqm"] == pytest.approx(0.25)  # mean of +0.4 and +0.1 (IQM of two values)
    assert summary["residual_sac"]["gain_iqm"] == pytest.approx(0.1)
    assert "gain_iqm" not in summary["crossq"] and summary["crossq"]["iqm"] == 0.0
    assert summary["residual"]["env_steps_per_s_mean"] == 50.0
    lines = bench.verdicts(summary)
    assert any("`residual`" in x and "target missed" in x for x in lines)
    met = bench.verdicts(bench.summarize([_push_run("residual", 0, 0.8, 0.3)]))
    assert "target met" in met[0]

    bench.write_report(_push_data(runs), tmp_path)
    md = (tmp_path / "residual_push.md").read_text()
    assert "| `residual` | bc | 0.35 | 0.60 [" in md and "+25 points" in md
    assert (tmp_path / "residual_push.png").stat().st_size > 0
    bench.main(["--from-json", str(tmp_path / "residual_push.json"), "--out-dir", str(tmp_path / "again")])


def test_push_shards_merge_and_refuse_overlaps_or_different_settings(tmp_path: Path) -> None:
    bench = _bench("residual_push")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_push_data([_push_run("residual", 0, 0.6, 0.3)], "cmd a")))
    b.write_text(json.dumps(_push_data([_push_run("crossq", 0, 0.1, None)], "cmd b")))
    merged = bench.merge([a, b])
    assert {r["learner"] for r in merged["runs"]} == {"residual", "crossq"}
    assert "cmd a" in merged["command"] and "cmd b" in merged["command"] and "--merge" in merged["command"]
    with pytest.raises(SystemExit, match="more than one shard"):
        bench.merge([a, a])
    other = _push_data([], "cmd c")
    other["env_steps"] = 5
    b.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="differ in"):
        bench.merge([a, b])


def test_dsrl_budget_is_converted_to_env_steps() -> None:
    bench = _bench("residual_push")
    per = bench.env_steps_per_agent_step("dsrl", {"execution_horizon": 4})
    assert per == pytest.approx(100 / 25)
    assert bench.env_steps_per_agent_step("dsrl", {"execution_horizon": 8}) == pytest.approx(100 / 13)
    assert bench.env_steps_per_agent_step("residual", {"execution_horizon": 8}) == 1.0


def _s2s_run(seed: int, before_pb: float, after_pb: float, after_mj: float) -> dict[str, Any]:
    def ev(rate: float) -> dict[str, float]:
        return {"success_rate": rate, "final_distance_m": 0.04, "mean_return": 1.0}

    return {
        "seed": seed,
        "base_train_wall_s": 10.0,
        "residual_train_wall_s": 5.0,
        "before": {"mujoco": ev(1.0), "pybullet": ev(before_pb)},
        "after": {"mujoco": ev(after_mj), "pybullet": ev(after_pb)},
    }


def test_sim2sim_reading_is_computed_from_the_runs(tmp_path: Path) -> None:
    bench = _bench("residual_sim2sim")
    runs = [_s2s_run(0, 0.6, 0.9, 1.0), _s2s_run(1, 0.7, 0.8, 0.8)]
    data = {
        "command": "cmd",
        "env_id": bench.ENV_ID,
        "base_steps": 100,
        "residual_steps": 50,
        "learner": "residual_sac",
        "residual_scale": 0.2,
        "episodes": 10,
        "machine": "cpu",
        "runs": runs,
        "summary": bench.summarize(runs),
    }
    assert data["summary"]["gain/pybullet"]["iqm"] == pytest.approx(0.2)
    assert data["summary"]["change/mujoco"]["iqm"] == pytest.approx(-0.1)
    text = "\n".join(bench.reading(data))
    assert "a gap of 35 points" in text and "+20 points" in text and "57% of the gap closed" in text
    assert "did not collapse" in text  # -10 points is the edge of "collapse"
    runs[1]["after"]["mujoco"]["success_rate"] = 0.5
    data["summary"] = bench.summarize(runs)
    assert "lost more than 10 points" in "\n".join(bench.reading(data))
    bench.write_report(data, tmp_path)
    assert "| base + residual (tuned in PyBullet) | pybullet |" in (tmp_path / "residual_sim2sim.md").read_text()
