"""`robot-rl demo --policy flow` at a tiny budget: expert dataset → offline training → bundle with its sampler →
evaluation in MuJoCo and PyBullet; the artifacts and the summary, not success (the budget is far too small)."""

from __future__ import annotations

import json
from pathlib import Path

import minari
import pytest

from robot_rl.cli import DemoArgs, main
from robot_rl.train.demo import write_figures
from robot_rl.train.demo_generative import DEMO_CHUNK, GENERATIVE_POLICIES, demo_algo_config

TINY = ["--expert-episodes", "3", "--updates", "24", "--eval-episodes", "1", "--no-progress"]
SUMMARY_KEYS = {
    "policy", "env", "expert_episodes", "expert_success_rate", "dataset_transitions", "steps", "step_unit",
    "train_wall_s", "steps_per_s", "torch_eval_return", "torch_eval_success_rate", "onnx_eval_return",
    "onnx_eval_return_std", "mujoco_success_rate", "mujoco_final_distance_m", "pybullet_success_rate",
    "pybullet_final_distance_m", "pybullet_eval_return", "sampler", "chunk", "parity_max_abs_diff", "bundle",
    "onnx_sha256", "dataset", "run_dir", "learning_curve", "demo_wall_s",
}  # fmt: skip


def test_flow_demo_writes_dataset_run_sampler_bundle_and_evaluates_it_in_both_engines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--out-dir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "models")]
    figures = tmp_path / "figures.json"
    args = ["demo", "--policy", "flow", *TINY, "--sampler-steps", "3", "--deploy-s", "0", *dirs]
    assert main([*args, "--figures-out", str(figures)]) == 0
    out = capsys.readouterr().out
    for stage in range(1, 7):
        assert f"[{stage}/6]" in out  # dataset, train, export, MuJoCo, PyBullet, plot (no ROS stage at --deploy-s 0)
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "demo_summary.json").read_text())
    assert set(summary) == SUMMARY_KEYS, set(summary) ^ SUMMARY_KEYS
    assert summary["policy"] == "flow" and summary["steps"] == 24 and summary["step_unit"] == "gradient updates"
    # The dataset is the scripted expert's, on disk in Minari's format, and the run trained offline on it.
    assert summary["expert_episodes"] == 3 and summary["dataset_transitions"] == 3 * 50  # reach: 50-step episodes
    assert summary["expert_success_rate"] == 1.0
    assert minari.load_dataset(summary["dataset"]).total_episodes == 3
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["data"] == "offline" and config["dataset"]["transitions"] == 150
    # The bundle carries the sampler with the demo's chunk layout and the K asked for, verified on ≥ 10⁴ inputs.
    bundle = tmp_path / "models" / "demo-flow-robot_rl_PandaReach-v0"
    assert summary["bundle"] == str(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["sampler"] == {"kind": "flow_euler", "steps": 3} and summary["sampler"] == "flow_euler, K=3"
    assert manifest["noise_name"] == "noise" and manifest["noise_shape"] == ["batch", 16, 7]
    spec = manifest["policy_spec"]
    layout = (spec["chunk_size"], spec["execution_horizon"], spec["obs_history"])
    assert layout == (DEMO_CHUNK["chunk_size"], DEMO_CHUNK["execution_horizon"], DEMO_CHUNK["obs_history"])
    assert manifest["parity"]["n_samples"] >= 10_000
    assert summary["parity_max_abs_diff"] == manifest["parity"]["max_abs_diff"]
    assert summary["onnx_sha256"] == manifest["onnx_sha256"]
    # Both engines ran the bundle on the same seeded episodes.
    for engine in ("mujoco", "pybullet"):
        assert 0.0 <= summary[f"{engine}_success_rate"] <= 1.0 and summary[f"{engine}_final_distance_m"] > 0.0
    assert (bundle / "learning_curve.png").stat().st_size > 1000
    assert "=== robot-rl demo summary (flow) ===" in out and str(bundle) in out
    written = json.loads(figures.read_text())
    assert written["command"] == (
        "robot-rl demo --policy flow --env robot_rl/PandaReach-v0 --expert-episodes 3 --updates 24 "
        "--sampler-steps 3 --seed 0 --deploy-s 0"
    )
    assert written["summary"] == summary


def test_sac_demo_figures_command_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    write_figures({"demo_wall_s": 1.0}, DemoArgs(), path)
    command = json.loads(path.read_text())["command"]
    assert command == "robot-rl demo --env robot_rl/PandaReach-v0 --steps 30000 --seed 0 --deploy-s 20"


@pytest.mark.parametrize("policy", GENERATIVE_POLICIES)
def test_demo_config_sets_the_chunk_layout_and_keeps_the_method_default_k(policy: str) -> None:
    cfg = demo_algo_config(policy)
    assert (cfg.chunk_size, cfg.execution_horizon, cfg.obs_history) == (16, 8, 2)
    assert cfg.sampler_steps == type(cfg)().sampler_steps
    assert demo_algo_config(policy, 2).sampler_steps == 2


def test_generative_demo_refuses_a_task_without_scripted_expert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--policy", "meanflow", "--env", "Pendulum-v1", "--out-dir", str(tmp_path)]
    assert main(args) == 2
    assert "pick a robot_rl/* task" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
