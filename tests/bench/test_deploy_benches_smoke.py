"""Smoke tests of bench/recorder_throughput.py and bench/node_latency.py: tiny runs write the documented JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.bench_loader import load_bench


def test_recorder_throughput_tiny_run(tmp_path: Path) -> None:
    load_bench("recorder_throughput").main(["--steps", "300", "--repeats", "1", "--out-dir", str(tmp_path)])
    report = json.loads((tmp_path / "recorder_throughput.json").read_text())
    assert report["ours"]["steps_per_s"] > 0 and report["ours"]["dropped"] == 0
    assert report["rosbags_mcap_writer"]["steps_per_s"] > 0 and report["ratio_ours_vs_peer"] > 0
    assert (tmp_path / "recorder_throughput.md").read_text().startswith("# Episode recorder throughput")


@pytest.mark.ros
def test_node_latency_tiny_run(tmp_path: Path) -> None:
    pytest.importorskip("rclpy")
    import os

    saved = dict(os.environ)
    try:
        args = ["--seconds", "1.5", "--rates", "100", "--no-record-run", "--executors", "single", "events"]
        load_bench("node_latency").main([*args, "--out-dir", str(tmp_path)])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    report = json.loads((tmp_path / "node_latency.json").read_text())
    for key in ("p50_ms", "p99_ms", "p999_ms", "deadline_miss_rate", "echo"):
        assert key in report["100"], key
    run, cbf, events = report["runs"]
    assert (run["executor"], cbf["executor"], events["executor"]) == ("single", "single", "events")
    assert events["policy_node"]["ticks"] > 50 and events["echo"]["n"] > 50  # both nodes served on that executor
    assert run["policy_node"]["ticks"] > 50 and run["echo"]["n"] > 50
    assert run["round_trip_policy"]["n"] > 50 and run["round_trip_echo"]["n"] > 50
    # The driver's pose is plausible: the chain passes the policy's commands (it holds only until the stream starts),
    # so every link runs; the CBF run has the barrier link in its chain and solved its QP without a fallback.
    assert run["policy_node"]["safety"]["held"] < run["policy_node"]["ticks"] // 2
    assert not cbf["record"] and cbf["cbf"] and "cbf" not in run["policy_node"]["safety"]
    assert cbf["policy_node"]["safety"]["cbf_infeasible"] == cbf["policy_node"]["safety"]["cbf_error"] == 0
    assert "CBF link on vs off" in (tmp_path / "node_latency.md").read_text()
