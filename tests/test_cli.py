"""`robot-rl` command line: tiny training runs in-process, error messages and exit codes, one subprocess."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from robot_rl.algos.sac import SAC
from robot_rl.cli import main
from robot_rl.core.types import Batch, TrainingStats


def tiny_args(out_dir: Path, run_name: str, total_steps: int = 300) -> list[str]:
    return [
        "--total-steps", str(total_steps),
        "--learning-starts", "100",
        "--eval-every", "0",
        "--eval-episodes", "1",
        "--log-every", "100",
        "--no-tensorboard",
        "--no-progress",
        "--torch-threads", "1",
        "--actor-hidden", "32", "32",
        "--critic-hidden", "32", "32",
        "--batch-size", "32",
        "--out-dir", str(out_dir),
        "--run-name", run_name,
    ]  # fmt: skip


def _config(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "config.json").read_text())


def test_train_sac_writes_the_run_artifacts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "sac", *tiny_args(tmp_path, "sac")]) == 0
    run = tmp_path / "sac"
    cfg = _config(run)
    assert cfg["algo"] == "sac" and cfg["algo_config"]["recipe"] == "classic"
    assert cfg["algo_config"]["actor_hidden"] == [32, 32] and cfg["train"]["total_steps"] == 300
    assert cfg["policy_spec"]["action"] == {"low": [-2.0], "high": [2.0], "names": [], "units": ""}

    with open(run / "eval.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and int(rows[0]["step"]) == 300 and int(rows[0]["episodes"]) == 1
    assert math.isfinite(float(rows[0]["mean_return"]))

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss/critic"] for r in records if "loss/critic" in r]
    assert losses and all(math.isfinite(v) for v in losses)
    assert all("step" in r and "wall_s" in r for r in records)

    assert (run / "checkpoints" / "latest").read_text().strip() == "step_000000300"
    assert (run / "checkpoints" / "step_000000300" / "model.safetensors").exists()
    assert json.loads((run / "summary.json").read_text())["steps"] == 300
    assert not (run / "tb").exists()  # --no-tensorboard
    assert "done: 300 steps" in capsys.readouterr().out


def test_train_td3(tmp_path: Path) -> None:
    assert main(["train", "td3", *tiny_args(tmp_path, "td3", total_steps=200)]) == 0
    cfg = _config(tmp_path / "td3")
    assert cfg["algo"] == "td3" and cfg["algo_config"]["policy_delay"] == 2
    assert (tmp_path / "td3" / "checkpoints" / "step_000000200").is_dir()


def test_recipe_crossq_selects_the_preset_and_keeps_overrides(tmp_path: Path) -> None:
    args = ["train", "sac", "--recipe", "crossq", *tiny_args(tmp_path, "cq", total_steps=150), "--gamma", "0.98"]
    assert main(args) == 0
    algo_cfg = _config(tmp_path / "cq")["algo_config"]
    assert algo_cfg["recipe"] == "crossq"
    assert algo_cfg["critic_norm"] == "batch_renorm" and algo_cfg["use_target_network"] is False
    assert algo_cfg["policy_delay"] == 3 and algo_cfg["adam_beta1"] == 0.5 and algo_cfg["critic_lr"] == 1e-3
    assert algo_cfg["batch_size"] == 32 and algo_cfg["gamma"] == 0.98  # flags still override the preset


def test_unknown_env_exits_2_with_a_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "sac", *tiny_args(tmp_path, "x"), "--env", "Pendulumm-v1"]) == 2
    err = capsys.readouterr().err
    assert "'Pendulumm-v1'" in err and "did you mean" in err and "Pendulum-v1" in err
    assert "Traceback" not in err


def test_invalid_config_value_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "sac", *tiny_args(tmp_path, "x"), "--gamma", "1.5"])
    assert exc.value.code not in (0, None)
    captured = capsys.readouterr()
    assert "gamma must be in [0, 1), got 1.5" in captured.out + captured.err
    assert not (tmp_path / "x").exists()


def test_unknown_recipe_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "sac", "--recipe", "fancy", *tiny_args(tmp_path, "x")]) == 2
    assert "unknown SAC recipe 'fancy'" in capsys.readouterr().err
    assert main(["train", "sac", "--recipe"]) == 2
    assert "--recipe needs a value" in capsys.readouterr().err


def test_unwritable_out_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert main(["train", "td3", *tiny_args(blocker / "sub", "x")]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and str(blocker / "sub") in err


def test_second_run_needs_resume_and_resume_extends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "td3", *tiny_args(tmp_path, "r", total_steps=150)]) == 0
    capsys.readouterr()
    assert main(["train", "td3", *tiny_args(tmp_path, "r", total_steps=150)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "td3", *tiny_args(tmp_path, "r", total_steps=250), "--resume"]) == 0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["steps"] == 250
    assert (tmp_path / "r" / "checkpoints" / "latest").read_text().strip() == "step_000000250"


def test_resume_without_a_run_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "sac", *tiny_args(tmp_path, "empty"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "holds no run" in err


def test_divergence_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    def nan_update(self: SAC, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        next(batches)
        return TrainingStats(values={"loss/critic": math.nan}, num_updates=1)

    monkeypatch.setattr(SAC, "update", nan_update)
    assert main(["train", "sac", *tiny_args(tmp_path, "nan")]) == 1
    assert "training diverged at step 100" in capsys.readouterr().err
    assert (tmp_path / "nan" / "failure.json").exists()


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        ([], 2, "usage: robot-rl"),
        (["--help"], 0, "usage: robot-rl"),
        (["bogus"], 2, "unknown command 'bogus'"),
        (["train"], 2, "train needs an algorithm"),
        (["train", "ppo"], 2, "unknown algorithm 'ppo'"),
    ],
)
def test_usage_errors(argv: list[str], code: int, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    captured = capsys.readouterr()
    assert text in captured.out + captured.err


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "robot-rl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "robot_rl.cli"]


def test_console_script_trains_in_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*_console_script(), "train", "td3", *tiny_args(tmp_path, "sub", total_steps=150)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "done: 150 steps" in proc.stdout
    assert (tmp_path / "sub" / "checkpoints" / "latest").exists()


def test_module_entry_point_reports_errors_with_exit_code(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "robot_rl.cli", "train", "sac", *tiny_args(tmp_path, "x"), "--env", "NoSuchEnv-v0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "robot-rl: error: unknown environment id 'NoSuchEnv-v0'" in proc.stderr


def test_recipe_equals_form_selects_the_preset(tmp_path: Path) -> None:
    assert main(["train", "sac", "--recipe=crossq", *tiny_args(tmp_path, "cq", total_steps=120)]) == 0
    algo_cfg = _config(tmp_path / "cq")["algo_config"]
    assert algo_cfg["recipe"] == "crossq"
    assert algo_cfg["critic_norm"] == "batch_renorm" and algo_cfg["use_target_network"] is False


def test_resume_extends_with_total_steps_equals_form(tmp_path: Path) -> None:
    assert main(["train", "td3", *tiny_args(tmp_path, "r", total_steps=150)]) == 0
    args = [a for a in tiny_args(tmp_path, "r") if a not in ("--total-steps", "300")]
    assert main(["train", "td3", *args, "--total-steps=250", "--resume"]) == 0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["steps"] == 250


def test_demo_trains_exports_and_evaluates_the_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["demo", "--steps", "300", "--eval-episodes", "2", "--no-progress", "--deploy-s", "8"]
    assert main([*args, "--out-dir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "models")]) == 0
    out = capsys.readouterr().out
    bundle = tmp_path / "models" / "demo-robot_rl_PandaReach-v0"
    assert (bundle / "policy.onnx").exists() and (bundle / "manifest.json").exists()
    assert (bundle / "learning_curve.png").stat().st_size > 1000
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "demo_summary.json").read_text())
    assert summary["steps"] == 300 and summary["parity_max_abs_diff"] <= 1e-5
    assert "onnx_eval_return" in out and str(bundle) in out
    # The robot task adds the sim-to-sim check: the same bundle evaluated in the PyBullet twin.
    assert 0.0 <= summary["pybullet_success_rate"] <= 1.0 and summary["pybullet_final_distance_m"] > 0.0
    manifest = json.loads((bundle / "manifest.json").read_text())
    robot = manifest["policy_spec"]["robot"]
    assert robot["backend"] == "mujoco" and robot["command"]["type"] == "joint_velocity"
    # policies emit physical commands: the bundle's action bounds are the Panda's joint speed limits (rad/s)
    assert manifest["policy_spec"]["action"]["high"] == robot["command"]["physical_high"]
    assert manifest["policy_spec"]["action"]["units"] == "rad/s"
    assert manifest["policy_spec"]["action"]["names"] == [f"panda_joint{i}" for i in range(1, 8)]
    # ... and ends with a ROS 2 deployment on the simulated robot: safety chain, scripted takeover, MCAP recording.
    pytest.importorskip("rclpy")
    assert all(rc == 0 for rc in summary["ros_node_exit_codes"].values()), summary["ros_node_exit_codes"]
    assert summary["ros_recorded_episodes"] >= 1 and summary["ros_loop_p99_ms"] > 0.0
    assert summary["ros_intervention_steps"] > 0
    assert summary["ros_recorded_intervention_steps"] == summary["ros_intervention_steps"]
    assert "ros_loop_p99_ms" in out
