"""`robot-rl demo --policy residual` at a tiny budget: the ladder's artifacts and summary (expert data → BC base →
residual SAC → composite bundle → both engines), not success (the budget is far too small)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robot_rl.cli import main
from robot_rl.export.runtime import OnnxPolicy

TINY = ["--expert-episodes", "3", "--updates", "40", "--steps", "250", "--eval-episodes", "1", "--no-progress"]


def test_the_residual_ladder_writes_base_residual_and_one_composite_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--out-dir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "models")]
    assert main(["demo", "--policy", "residual", *TINY, "--deploy-s", "0", *dirs]) == 0
    out = capsys.readouterr().out
    for stage in range(1, 8):
        assert f"[{stage}/7]" in out  # data, BC base, residual, export, MuJoCo, PyBullet, plot (no ROS at 0 s)
    (summary_file,) = (tmp_path / "runs").glob("*/demo_summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["policy"] == "residual" and summary["residual_learner"] == "residual_sac"
    assert summary["base_updates"] == 40 and summary["steps"] == 250 and summary["step_unit"] == "env steps"
    for engine in ("mujoco", "pybullet"):
        assert 0.0 <= summary[f"{engine}_base_success_rate"] <= 1.0 and 0.0 <= summary[f"{engine}_success_rate"] <= 1.0
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert config["algo"] == "residual_sac" and config["train"]["data"] == "mixed"
    assert config["base"]["kind"] == "run" and config["base"]["ref"] == summary["base_run_dir"]
    composite, base = OnnxPolicy.load(summary["bundle"]), OnnxPolicy.load(summary["base_bundle"])
    assert composite.spec.observation.dim == base.spec.observation.dim  # the base runs inside the composite
    assert composite.manifest.onnx_sha256 == summary["onnx_sha256"] != base.manifest.onnx_sha256


def test_the_ladder_on_a_chunked_flow_base_deploys_the_residual_on_its_base_bundle(tmp_path: Path) -> None:
    dirs = ["--out-dir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "models")]
    assert main(["demo", "--policy", "residual", "--residual-base", "flow", *TINY, "--deploy-s", "0", *dirs]) == 0
    (summary_file,) = (tmp_path / "runs").glob("*/demo_summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["base"] == "flow"
    composite, base = OnnxPolicy.load(summary["bundle"]), OnnxPolicy.load(summary["base_bundle"])
    assert base.spec.chunk_size > 1 and composite.spec.chunk_size == 1  # the base keeps its own chunk queue
    assert composite.base is not None and composite.base.manifest.onnx_sha256 == base.manifest.onnx_sha256
    assert composite.spec.robot is not None and composite.spec.robot == base.spec.robot
