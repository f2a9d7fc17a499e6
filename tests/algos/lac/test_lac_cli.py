"""`robot-rl train lac` on CartPoleBalance: the env's cost reaches the replay, the run checkpoints, resumes and
exports to a verified ONNX bundle through the same path as SAC's (tests/algos/test_plugins.py mirrors it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.cli import main

CARTPOLE = "robot_rl/CartPoleBalance-v0"


def lac_args(out_dir: Path, run_name: str, total_steps: int, *extra: str) -> list[str]:
    return [
        "--env", CARTPOLE,
        "--total-steps", str(total_steps),
        "--learning-starts", "100",
        "--eval-every", "0",
        "--eval-episodes", "1",
        "--log-every", "100",
        "--checkpoint-every", "200",
        "--no-tensorboard",
        "--no-progress",
        "--torch-threads", "1",
        "--actor-hidden", "32", "32",
        "--critic-hidden", "32", "32",
        "--batch-size", "32",
        "--out-dir", str(out_dir),
        "--run-name", run_name,
        *extra,
    ]  # fmt: skip


def _checkpoint_costs(run: Path) -> np.ndarray:
    from robot_rl.train import checkpoint as ckpt

    latest = ckpt.latest_checkpoint(run / "checkpoints")
    assert latest is not None
    return ckpt.load_checkpoint(latest).data["buffer/cost"].numpy()


def test_train_resume_export_and_eval_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "lac", *lac_args(tmp_path, "lac", 300, "--horizon", "5")]) == 0
    run = tmp_path / "lac"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["algo"] == "lac" and cfg["algo_module"] == "robot_rl.algos.lac" and cfg["algo_config"]["horizon"] == 5
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    stats = [r for r in records if "loss/critic" in r]
    assert stats and all(np.isfinite([r["loss/critic"], r["lambda"], r["alpha"]]).all() for r in stats)
    assert all(r["cost/mean"] > 0 for r in stats)  # the learner saw the env's cost, not zeros

    costs = _checkpoint_costs(run)  # info["cost"] flowed from the env into the replay buffer
    assert len(costs) == 300 and (costs >= 0).all() and (costs > 0).mean() > 0.9

    assert main(["train", "lac", *lac_args(tmp_path, "lac", 400, "--horizon", "5"), "--resume"]) == 0
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_000000400"
    capsys.readouterr()

    bundle = tmp_path / "bundle"
    assert main(["export", str(run), "--out", str(bundle), "--parity-samples", "200"]) == 0
    assert (bundle / "policy.onnx").exists() and "parity max" in capsys.readouterr().out

    # The bundle is the trained actor's mean: ONNX output equals the checkpoint's torch policy (physical units).
    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.from_run import load_run_policy

    obs = np.random.default_rng(0).normal(0.0, 0.3, size=(32, 4)).astype(np.float32)
    with torch.inference_mode():
        expected = load_run_policy(run).policy(torch.from_numpy(obs)).numpy()
    onnx_policy = OnnxPolicy.load(bundle)
    np.testing.assert_allclose(np.stack([onnx_policy.act(o) for o in obs]), expected, atol=1e-5)
    assert np.ptp(expected) > 0

    assert main(["eval", "--policy", str(bundle), "--episodes", "1"]) == 0
    assert "return" in capsys.readouterr().out


def test_an_env_without_a_cost_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = lac_args(tmp_path, "pendulum", 150)
    args[args.index(CARTPOLE)] = "Pendulum-v1"
    assert main(["train", "lac", *args]) == 2
    assert "info['cost']" in capsys.readouterr().err
