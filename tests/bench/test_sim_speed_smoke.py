"""Smoke test of bench/sim_speed.py: a --quick run on one env writes the documented JSON (timings not checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.bench_loader import load_bench

ENV_ID = "robot_rl/CartPoleBalance-v0"


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_quick_run_writes_schema(tmp_path: Path, backend: str) -> None:
    bench = load_bench("sim_speed")
    bench.main(["--quick", "--envs", ENV_ID, "--backends", backend, "--out-dir", str(tmp_path)])

    report = json.loads((tmp_path / "sim_speed.json").read_text())
    assert {"machine", "results"} <= set(report)
    machine = report["machine"]
    for key in ("cpu", "logical_cpus", "mujoco", "pybullet", "load_avg_1m_before_after"):
        assert key in machine, key
    assert isinstance(machine["logical_cpus"], int) and machine["logical_cpus"] >= 1

    key = f"{ENV_ID}[{backend}]"
    assert list(report["results"]) == [key]
    r = report["results"][key]
    assert r["env_id"] == ENV_ID and r["backend"] == backend
    assert isinstance(r["n_substeps"], int) and r["n_substeps"] >= 1
    for field in ("steps_per_s", "bare_steps_per_s"):
        assert isinstance(r[field], float) and r[field] > 0, field
    assert r["wrapper_overhead"] == pytest.approx(r["bare_steps_per_s"] / r["steps_per_s"] - 1.0, abs=2e-3)

    if backend == "mujoco":  # the worst MuJoCo env is profiled
        assert report["profile"]["key"] == key and report["profile"]["top"]
    md = (tmp_path / "sim_speed.md").read_text()
    assert "bench/sim_speed.py --quick" in md and ENV_ID in md
