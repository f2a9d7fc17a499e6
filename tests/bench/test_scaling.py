"""bench/scaling.py: the scaling model's projection on hand-made inputs, and a `--quick` run's documented JSON."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

scaling = importlib.import_module("bench.scaling")  # the repo root is on sys.path (pytest pythonpath)


def test_projection_saturates_where_actors_reach_the_update_ceiling() -> None:
    """100 steps/s per actor, 250 updates/s at UTD 1, ingestion far above: the learner saturates at N = 3."""
    p = scaling.project(100.0, 1e6, 250.0, 1.0, bytes_per_transition=200.0, weight_bytes=1000.0, push_every=10)
    assert p["update_ceiling_steps_s"] == 250.0 and p["learner_ceiling_steps_s"] == 250.0
    assert p["bound_by"] == "updates" and p["saturation_actors"] == 3
    rows = {r["actors"]: r for r in p["rows"]}
    assert [r["actors"] for r in p["rows"]] == list(scaling.ACTOR_COUNTS)
    assert rows[1]["steps_per_s"] == 100.0 and rows[1]["limited_by"] == "actors"
    assert rows[2]["steps_per_s"] == 200.0 and rows[4]["steps_per_s"] == 250.0 and rows[4]["limited_by"] == "updates"
    assert rows[256]["steps_per_s"] == 250.0
    # network: transitions once; one broadcast per K=10 env steps, fetched by every actor
    assert rows[2]["transition_bytes_per_s"] == 200.0 * 200.0
    assert rows[2]["broadcasts_per_s"] == 20.0 and rows[2]["weight_bytes_per_s"] == 20.0 * 1000.0 * 2
    assert rows[8]["weight_bytes_per_s"] == 25.0 * 1000.0 * 8
    assert rows[8]["total_bytes_per_s"] == 250.0 * 200.0 + 25.0 * 1000.0 * 8
    # one thread ingesting and updating: 1 / (1/1e6 + 1/250), a little under 250
    assert p["serial_ceiling_steps_s"] == pytest.approx(1 / (1e-6 + 1 / 250))
    assert p["serial_saturation_actors"] == 3


def test_projection_utd_and_ingestion_bounds() -> None:
    """UTD 2 halves the update ceiling; a low ingestion ceiling binds instead; an exact multiple saturates at it."""
    p = scaling.project(100.0, 1e6, 500.0, 2.0, 1.0, 1.0, 100, actor_counts=(1, 2, 3))
    assert p["update_ceiling_steps_s"] == 250.0 and p["saturation_actors"] == 3
    q = scaling.project(100.0, 400.0, 1e6, 1.0, 1.0, 1.0, 100)
    assert q["bound_by"] == "ingestion" and q["learner_ceiling_steps_s"] == 400.0 and q["saturation_actors"] == 4
    assert scaling.saturation_actors(100.0, 300.0) == 3 and scaling.saturation_actors(100.0, 50.0) == 1
    assert scaling.saturation_actors(0.0, 50.0) is None
    with pytest.raises(ValueError):
        scaling.project(1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 100)


@pytest.mark.timeout(300)
def test_quick_run_writes_the_documented_json(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    doc = tmp_path / "scaling_doc.md"
    args = ["--quick", "--tasks", "Pendulum-v1", "--utd", "1", "2", "--out-dir", str(tmp_path), "--doc", str(doc)]
    scaling.main(args)
    report = json.loads((tmp_path / "scaling.json").read_text())
    for key in ("command", "quick", "settings", "actor_counts", "ray_cpus", "machine", "assumptions", "tasks"):
        assert key in report, key
    assert report["quick"] and report["actor_counts"] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    (task,) = report["tasks"]
    assert task["env_id"] == "Pendulum-v1" and task["obs_dim"] == 3 and task["act_dim"] == 1
    assert task["actor"]["in_actor_steps_per_s"] > 0 and task["actor"]["round_trip_steps_per_s"] > 0
    assert task["ingestion"]["transitions_per_s"] > 0 and task["updates"]["updates_per_s"] > 0
    bb = task["block_bytes"]
    assert bb["bytes_per_transition"] >= bb["array_bytes_per_transition"] > 0
    assert bb["per_transition_arrays"]["obs"] == 3 * 4  # float32 observations
    bc = task["broadcast"]
    assert bc["weight_bytes"] >= bc["array_bytes"] > 0 and bc["put_ms_median"] > 0
    assert set(bc["fetch"]) == {"1", "2"} and all(f["round_ms"] > 0 for f in bc["fetch"].values())
    assert [p["utd"] for p in task["projections"]] == [1.0, 2.0]
    for p in task["projections"]:
        assert len(p["rows"]) == 9 and p["saturation_actors"] >= 1
        assert p["learner_ceiling_steps_s"] == min(
            task["ingestion"]["transitions_per_s"], task["updates"]["updates_per_s"] / p["utd"]
        )
    md = (tmp_path / "scaling.md").read_text()
    assert md.startswith("# Scaling model") and report["command"] in md and "--quick" in md
    assert doc.read_text().startswith("# Scaling: how many actors one learner can use")
    # --from-json re-renders without measuring
    (tmp_path / "scaling.md").unlink()
    scaling.main(["--from-json", str(tmp_path / "scaling.json"), "--out-dir", str(tmp_path), "--no-doc"])
    assert (tmp_path / "scaling.md").read_text() == md
