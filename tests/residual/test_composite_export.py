"""A residual run on a training-run base exports as one bundle (base and residual in one verified graph, raw
observations in); a changed base or a base that cannot compose is refused with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.cli import main
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.residual.base import BaseError, load_base
from robot_rl.residual.composite import CompositePolicy
from robot_rl.train.envs import make_env
from robot_rl.train.from_run import load_run_policy

CARTPOLE = "robot_rl/CartPoleBalance-v0"


def _train(args: list[str], runs: Path, name: str, steps: int) -> Path:
    common = ["--env", CARTPOLE, "--total-steps", str(steps), "--learning-starts", "100", "--out-dir", str(runs)]
    common += ["--run-name", name, "--eval-every", "0", "--eval-episodes", "1", "--no-progress"]
    assert main(["train", *args, *common]) == 0
    return runs / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SAC base run and a residual run on top of it (both short: the graph, not the skill, is under test)."""
    out = tmp_path_factory.mktemp("runs")
    base = _train(["sac"], out, "base", 300)
    _train(["residual", "--base", str(base), "--residual-scale", "0.3"], out, "residual", 400)
    return out


def test_the_residual_run_exports_one_bundle_that_is_base_plus_residual(runs: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    assert main(["export", str(runs / "residual"), "--out", str(bundle), "--parity-samples", "2000"]) == 0
    policy = OnnxPolicy.load(bundle)
    assert policy.spec.observation.dim == 4  # the robot's raw observation: the base runs inside the graph
    composite = load_run_policy(runs / "residual").policy
    assert isinstance(composite, CompositePolicy)
    last = [m for m in composite.residual.modules() if isinstance(m, torch.nn.Linear)][-1]
    # the residual has moved off zero, so the comparison below means something
    assert float(last.weight.detach().abs().sum()) > 0

    # the graph equals base + residual computed separately: the base run's policy, its proposal, the residual
    env = make_env(CARTPOLE)
    base = load_base(str(runs / "base"), env, CARTPOLE)
    residual_run = json.loads((runs / "residual" / "config.json").read_text())
    assert residual_run["base"]["identity"] == base.identity
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = (rng.normal(size=4) * 0.3).astype(np.float32)
        proposal = base.propose(obs)
        with torch.no_grad():
            by_parts = composite.residual(torch.from_numpy(np.concatenate([obs, proposal]))[None])[0].numpy()
        np.testing.assert_allclose(policy.act(obs), by_parts, rtol=1e-4, atol=1e-4)
    env.close()


def test_a_changed_base_run_is_refused_at_export(runs: Path, tmp_path: Path) -> None:
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    config = json.loads((copy / "residual" / "config.json").read_text())
    config["base"]["ref"] = str(copy / "base")
    (copy / "residual" / "config.json").write_text(json.dumps(config))
    ckpt = sorted((copy / "base" / "checkpoints").iterdir())[-1]
    from safetensors.torch import load_file, save_file

    from robot_rl.core.fileio import sha256_file

    tensors = load_file(str(ckpt / "model.safetensors"))
    key = next(k for k in tensors if k.startswith("actor"))
    tensors[key] = tensors[key] * 2.0
    save_file(tensors, str(ckpt / "model.safetensors"))
    state = json.loads((ckpt / "state.json").read_text())
    state["sha256"]["model.safetensors"] = sha256_file(ckpt / "model.safetensors")
    (ckpt / "state.json").write_text(json.dumps(state))
    with pytest.raises(BaseError, match="differs from the one this run was trained on"):
        load_run_policy(copy / "residual")
    assert main(["export", str(copy / "residual"), "--out", str(tmp_path / "b")]) != 0


def test_a_run_on_an_expert_base_is_refused_at_export(tmp_path: Path) -> None:
    run = _train(["residual", "--base", "expert"], tmp_path, "on_expert", 150)
    with pytest.raises(BaseError, match="scripted-expert base cannot be exported"):
        load_run_policy(run)


@pytest.mark.slow
def test_sim_to_sim_a_mujoco_base_fine_tuned_in_pybullet_exports_for_pybullet(tmp_path: Path) -> None:
    """The sim-to-sim recipe end to end at toy length: a SAC reach base trained in MuJoCo, a residual on it trained
    in the PyBullet twin, exported: the bundle takes the raw observation and names PyBullet as its engine."""
    reach = "robot_rl/PandaReach-v0"
    common = ["--env", reach, "--learning-starts", "100", "--out-dir", str(tmp_path), "--eval-every", "0"]
    common += ["--eval-episodes", "1", "--no-progress"]
    args = ["train", "sac", "--total-steps", "200", "--run-name", "base", "--backend", "mujoco", *common]
    assert main(args) == 0
    args = ["train", "residual", "--base", str(tmp_path / "base"), "--backend", "pybullet", "--total-steps", "200"]
    assert main([*args, "--run-name", "fine", *common]) == 0
    bundle = tmp_path / "bundle"
    assert main(["export", str(tmp_path / "fine"), "--out", str(bundle), "--parity-samples", "2000"]) == 0
    policy = OnnxPolicy.load(bundle)
    assert policy.spec.robot is not None and policy.spec.robot.backend == "pybullet"
    assert policy.spec.observation.dim == make_env(reach).observation_space.shape[0]
    # evaluates in the engine it was fine-tuned in
    assert main(["eval", "--policy", str(bundle), "--episodes", "1"]) == 0
