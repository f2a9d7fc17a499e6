"""A residual whose base keeps state between steps (a chunked flow bundle, or a chunked flow run) exports as one
bundle directory: the residual's graph plus the base as its own verified bundle in `base/`, pinned by sha256.
`OnnxPolicy` runs both as one plain policy (equal to base + residual step by step, the base's chunk queue and
seeded noise included), and refuses a base that is not the pinned one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.cli import main
from robot_rl.export.errors import BundleError
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.residual.base import BaseError
from robot_rl.train.from_run import load_run_policy
from tests.algos.generative.test_generative_train_cli import _args, pendulum_dataset  # noqa: F401 (fixture)

PENDULUM = "Pendulum-v1"


def _residual(base: str, runs: Path, name: str, steps: int = 300) -> Path:
    args = ["train", "residual", "--env", PENDULUM, "--base", base, "--total-steps", str(steps)]
    args += ["--learning-starts", "100", "--out-dir", str(runs), "--run-name", name, "--residual-scale", "0.5"]
    assert main([*args, "--eval-every", "0", "--eval-episodes", "1", "--no-progress"]) == 0
    return runs / name


@pytest.fixture(scope="module")
def flow(pendulum_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: F811
    """A small chunked flow policy on Pendulum (H = 4, H_a = 2, T_o = 2), its bundle, and residuals on each."""
    runs = tmp_path_factory.mktemp("flow")
    assert main(_args("flow", pendulum_dataset, runs, 40)) == 0
    bundle = runs / "bundle"
    assert main(["export", str(runs / "flow"), "--out", str(bundle), "--parity-samples", "2000"]) == 0
    on_bundle = _residual(str(bundle), runs, "on_bundle")
    on_run = _residual(str(runs / "flow"), runs, "on_run", 200)
    return {"run": runs / "flow", "bundle": bundle, "on_bundle": on_bundle, "on_run": on_run}


def _export(run: Path, out: Path) -> None:
    assert main(["export", str(run), "--out", str(out), "--parity-samples", "2000"]) == 0


def test_a_residual_on_a_chunked_bundle_exports_as_a_plain_bundle_equal_to_base_plus_residual(
    flow: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "composite"
    _export(flow["on_bundle"], out)
    manifest = json.loads((out / "manifest.json").read_text())
    base_sha = json.loads((flow["bundle"] / "manifest.json").read_text())["onnx_sha256"]
    assert manifest["base"] == {"dir": "base", "onnx_sha256": base_sha, "feeds": "proposal"}
    assert manifest["parity"]["n_samples"] >= 2000 and manifest["parity"]["end_to_end"]["n_steps"] >= 2000

    policy = OnnxPolicy.load(out, seed=3)
    assert policy.spec.chunk_size == 1 and policy.spec.obs_history == 1 and policy.noise_shape is None
    assert policy.obs_dim == 3  # the raw observation: the base keeps its own history and chunk queue

    # step by step, across chunk boundaries and an episode reset: the base bundle on its own (same seed) plus the
    # residual's torch policy on [obs, proposal] gives the same actions
    residual = load_run_policy(flow["on_bundle"], compose=False).policy
    last = [m for m in residual.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert float(last.weight.detach().abs().sum()) > 0  # the residual moved off zero: the comparison means something
    base = OnnxPolicy.load(flow["bundle"], seed=3)
    rng = np.random.default_rng(0)
    for step in range(12):
        if step == 7:
            policy.reset()
            base.reset()
        obs = rng.normal(size=3).astype(np.float32)
        proposal = np.clip(base.spec.action.to_normalized(base.act(obs)), -1, 1).astype(np.float32)
        with torch.no_grad():
            want = residual(torch.from_numpy(np.concatenate([obs, proposal]))[None])[0].numpy()
        np.testing.assert_allclose(policy.act(obs), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="act_batch needs a stateless policy"):
        policy.act_batch(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="not finite"):
        policy.act(np.array([np.nan, 0, 0], np.float32))


def test_a_base_that_is_not_the_pinned_one_is_refused(flow: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "composite"
    _export(flow["on_bundle"], out)
    # another valid bundle in base/ (with the same sizes): refused, its sha256 is not the pinned one
    impostor = tmp_path / "impostor"
    _export(flow["on_run"], impostor)
    shutil.rmtree(out / "base")
    shutil.copytree(impostor, out / "base")
    with pytest.raises(BundleError, match=r"base bundle .* was refused: sha256 mismatch"):
        OnnxPolicy.load(out)
    # a manifest edited to pin the impostor is refused by the record inside the (hashed) residual graph
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["base"]["onnx_sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="manifest base does not match the model's record"):
        OnnxPolicy.load(out)
    # a tampered base model file
    good = tmp_path / "good"
    _export(flow["on_bundle"], good)
    with open(good / "base" / "policy.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="sha256 mismatch"):
        OnnxPolicy.load(good)


def test_a_residual_on_a_chunked_run_base_exports_its_base_first(flow: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "composite"
    _export(flow["on_run"], out)
    policy = OnnxPolicy.load(out)
    assert policy.base is not None and policy.base.spec.chunk_size == 4
    assert policy.base.manifest.extra["run_dir"] == str(flow["run"])
    action = policy.act(np.zeros(3, np.float32))
    assert action.shape == (1,) and np.isfinite(action).all()


def test_a_bundle_base_changed_since_training_is_refused_at_export(flow: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(flow["on_bundle"], run)
    config = json.loads((run / "config.json").read_text())
    config["base"]["identity"] = "bundle:sha256:" + "1" * 64
    (run / "config.json").write_text(json.dumps(config))
    from robot_rl.residual.on_base_bundle import export_run_on_base_bundle

    with pytest.raises(BaseError, match="differs from the one this run was trained on"):
        export_run_on_base_bundle(run, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()
