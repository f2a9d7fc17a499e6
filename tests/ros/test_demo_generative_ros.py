"""`robot-rl demo --policy flow` down to its ROS 2 stage, at a tiny budget: the chunked bundle runs in the policy
node against the simulated robot (launch/sim_deploy.launch.xml), planned asynchronously, and the summary reports
the node's chunk counters. Success is not asserted (24 updates learn nothing useful)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robot_rl.cli import main
from tests.train.test_demo_generative import SUMMARY_KEYS, TINY

ROS_CHUNK_KEYS = {
    "ros_chunk_execution", "ros_chunk_plans", "ros_chunk_async_plans", "ros_chunk_late_chunks",
    "ros_chunk_missed_actions", "ros_chunk_last_plan_latency_ms",
}  # fmt: skip


@pytest.mark.slow
def test_flow_demo_deploys_the_chunked_bundle_in_ros(
    ros_env: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--out-dir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "models")]
    assert main(["demo", "--policy", "flow", *TINY, "--deploy-s", "8", *dirs]) == 0
    out = capsys.readouterr().out
    assert "[6/7] deploying in ROS 2" in out and "asynchronous planning" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "demo_summary.json").read_text())
    assert SUMMARY_KEYS | ROS_CHUNK_KEYS <= set(summary), (SUMMARY_KEYS | ROS_CHUNK_KEYS) - set(summary)
    assert all(rc == 0 for rc in summary["ros_node_exit_codes"].values()), summary["ros_node_exit_codes"]
    # The node ran the chunked bundle: whole episodes, chunks planned on the worker thread, with the demo's layout.
    assert summary["ros_episodes_finished"] >= 1 and summary["ros_recorded_episodes"] >= 1
    assert summary["ros_chunk_execution"] == "receding async, H=16, H_a=8, T_o=2"
    assert summary["ros_chunk_plans"] > 0 and summary["ros_chunk_async_plans"] > 0
    assert summary["ros_chunk_missed_actions"] >= 0 and summary["ros_chunk_late_chunks"] >= 0
    assert summary["ros_chunk_last_plan_latency_ms"] > 0.0
    # Receding horizon: a chunk runs several ticks (about 5 of its H_a = 8 with a fast sampler: the next plan starts
    # 3 periods ahead), so the policy's own ticks far outnumber the plans. (A human's ticks plan nothing.)
    ticks = int(summary["ros_deadline_misses"].split(" of ")[1].split()[0])
    policy_ticks = ticks - summary["ros_intervention_steps"]
    assert policy_ticks / 8 <= summary["ros_chunk_plans"] <= policy_ticks / 2, (summary["ros_chunk_plans"], ticks)
    assert summary["ros_intervention_steps"] > 0
    assert summary["ros_recorded_intervention_steps"] == summary["ros_intervention_steps"]
    stats = json.loads((run_dir / "ros_deploy" / "policy_node_stats.json").read_text())
    assert stats["chunks"]["plans"] == summary["ros_chunk_plans"]
    assert stats["chunks"]["missed_actions"] == summary["ros_chunk_missed_actions"]
