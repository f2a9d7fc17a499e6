"""`robot-rl demo --policy residual` down to its ROS 2 stage, at a tiny budget: the composite bundle (a BC base and
the residual in one graph, or the residual on a chunked flow base bundle) runs in the policy node against the
simulated robot like any plain bundle — no special casing — behind the safety chain, with the scripted takeover
recorded. Success is not asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robot_rl.cli import main
from tests.train.test_demo_residual import TINY


@pytest.mark.slow
@pytest.mark.parametrize(("base", "what"), [("bc", "one graph"), ("flow", "the residual's graph on the base bundle")])
def test_the_residual_ladder_deploys_its_composite_bundle_in_ros(
    base: str, what: str, ros_env: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--out-dir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "models")]
    assert main(["demo", "--policy", "residual", "--residual-base", base, *TINY, "--deploy-s", "8", *dirs]) == 0
    out = capsys.readouterr().out
    assert "[7/8] deploying in ROS 2" in out and f"base and residual, {what}" in out
    (summary_file,) = (tmp_path / "runs").glob("*/demo_summary.json")
    summary = json.loads(summary_file.read_text())
    assert all(rc == 0 for rc in summary["ros_node_exit_codes"].values()), summary["ros_node_exit_codes"]
    assert summary["ros_episodes_finished"] >= 1 and summary["ros_recorded_episodes"] >= 1
    assert summary["ros_intervention_steps"] > 0
    assert summary["ros_recorded_intervention_steps"] == summary["ros_intervention_steps"]
