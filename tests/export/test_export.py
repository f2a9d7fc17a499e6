"""export_policy: parity, bounds, refusal paths that leave no bundle behind."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.export import onnx_export
from robot_rl.export.errors import ExportError
from robot_rl.export.manifest import (
    MANIFEST_FILE,
    META_SPEC_KEY,
    MODEL_CARD_FILE,
    ONNX_FILE,
    read_manifest,
    sha256_file,
)
from robot_rl.export.onnx_export import action_bound_slack, export_policy
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.nets.policy import TanhPolicy

PolicyFactory = Callable[..., TanhPolicy]
CONFIG = {"algo": "sac", "lr": 3e-4}


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists(), f"{out} should not exist after a refused export"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert leftovers == [], f"temporary export directories left behind: {leftovers}"


def test_export_writes_verified_bundle(bundle: Path, policy: TanhPolicy) -> None:
    assert sorted(os.listdir(bundle)) == sorted([MANIFEST_FILE, ONNX_FILE, MODEL_CARD_FILE])
    manifest = read_manifest(bundle)
    parity = manifest.parity
    # The parity contract: >= 10^4 random + boundary observations, max abs diff <= 1e-5.
    assert parity["n_random"] >= 10_000
    assert parity["n_boundary"] > 0
    assert parity["n_samples"] == parity["n_random"] + parity["n_boundary"]
    assert parity["max_abs_diff"] <= parity["tolerance"] == 1e-5
    assert parity["max_fraction_of_allowed"] <= 1.0
    assert parity["n_saturated"] > 0  # some parity observations drove an action to its bound
    assert manifest.onnx_sha256 == sha256_file(bundle / ONNX_FILE)
    assert manifest.policy_spec == policy.spec
    assert manifest.training_config == {"algo": "sac", "lr": 3e-4}
    assert manifest.extra == {"step": 1000}
    assert manifest.onnx_opset == 17
    assert list(manifest.input_shape) == ["batch", 8] and list(manifest.output_shape) == ["batch", 3]
    leftovers = [p.name for p in bundle.parent.iterdir() if p.name != bundle.name]
    assert leftovers == []

    model = onnx.load(str(bundle / ONNX_FILE))
    meta = {p.key: p.value for p in model.metadata_props}
    assert PolicySpec.from_json(json.loads(meta[META_SPEC_KEY])) == policy.spec
    assert not any(n.op_type.startswith("Random") for n in model.graph.node)

    card = (bundle / MODEL_CARD_FILE).read_text()
    assert manifest.onnx_sha256 in card
    assert "| 1 | knee | -0.5 | 1.5 |" in card
    assert "joint_vel" in card


def test_onnx_policy_matches_torch(bundle: Path, policy: TanhPolicy) -> None:
    loaded = OnnxPolicy.load(bundle)
    rng = np.random.default_rng(1)
    obs = rng.normal(0.0, 3.0, size=(200, 8)).astype(np.float32)
    with torch.inference_mode():
        expected = policy(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(loaded.act_batch(obs), expected, rtol=0, atol=1e-5)
    for i in range(20):
        np.testing.assert_allclose(loaded.act(obs[i]), expected[i], rtol=0, atol=1e-5)


def test_export_is_reproducible(tmp_path: Path, make_policy: PolicyFactory) -> None:
    policy = make_policy(hidden=(16,))
    first = export_policy(policy, tmp_path / "a", CONFIG, n_parity=500)
    second = export_policy(policy, tmp_path / "b", CONFIG, n_parity=500)
    assert first.onnx_sha256 == second.onnx_sha256


def test_saturated_actions_stay_within_bounds(tmp_path: Path, make_policy: PolicyFactory) -> None:
    policy = make_policy(out_gain=50.0)  # large pre-tanh values: actions saturate easily
    manifest = export_policy(policy, tmp_path / "sat", CONFIG, n_parity=1000)
    assert manifest.parity["n_saturated"] > 100
    loaded = OnnxPolicy.load(tmp_path / "sat")
    spec = policy.spec
    low, high, slack = spec.action.low_array, spec.action.high_array, action_bound_slack(spec)
    rng = np.random.default_rng(2)
    obs = np.concatenate([rng.uniform(-1e4, 1e4, size=(500, 8)), rng.normal(size=(500, 8))]).astype(np.float32)
    actions = loaded.act_batch(obs)
    assert np.all(actions >= low - slack) and np.all(actions <= high + slack)
    at_low = np.isclose(actions, low, rtol=0, atol=1e-6)
    at_high = np.isclose(actions, high, rtol=0, atol=1e-6)
    assert at_low.any(axis=0).all() and at_high.any(axis=0).all()  # every dimension hits both bounds
    single = np.stack([loaded.act(o) for o in obs[:50]])
    assert np.all(single >= low - slack) and np.all(single <= high + slack)


def test_refuses_to_overwrite_unless_asked(tmp_path: Path, make_policy: PolicyFactory) -> None:
    out = tmp_path / "bundle"
    first = export_policy(make_policy(hidden=(16,), seed=0), out, CONFIG, n_parity=500)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_policy(make_policy(hidden=(16,), seed=1), out, CONFIG, n_parity=500)
    assert read_manifest(out) == first
    second = export_policy(make_policy(hidden=(16,), seed=1), out, CONFIG, n_parity=500, overwrite=True)
    assert second.onnx_sha256 != first.onnx_sha256
    assert OnnxPolicy.load(out).manifest == second


@pytest.mark.parametrize(
    ("tensor_name", "value"),
    [("trunk.0.weight", float("nan")), ("trunk.2.bias", float("inf")), ("normalizer.var", float("-inf"))],
)
def test_non_finite_state_refused(tmp_path: Path, make_policy: PolicyFactory, tensor_name: str, value: float) -> None:
    policy = make_policy()
    state = dict(policy.named_parameters()) | dict(policy.named_buffers())
    with torch.no_grad():
        state[tensor_name].view(-1)[0] = value
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match=f"'{tensor_name}'.*non-finite"):
        export_policy(policy, out, CONFIG, n_parity=100)
    _assert_nothing_written(out)


def test_parity_failure_refused_when_onnxruntime_disagrees(
    tmp_path: Path, make_policy: PolicyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = onnx_export._run_onnx_single

    def drifting_run(session: Any, obs: np.ndarray) -> np.ndarray:
        out = real_run(session, obs)
        out[0, 0] += 1e-4  # one drifted action (on the all-zero observation) among thousands
        return out

    monkeypatch.setattr(onnx_export, "_run_onnx_single", drifting_run)
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match=r"parity check failed.*bundle not written"):
        export_policy(make_policy(), out, CONFIG, n_parity=2000)
    _assert_nothing_written(out)


class ExportDiverges(nn.Module):
    """Eager forward differs from the traced graph, as a mis-exported custom op would."""

    def __init__(self, inner: TanhPolicy) -> None:
        super().__init__()
        self.inner = inner
        self.spec = inner.spec

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        action: torch.Tensor = self.inner(obs)
        if torch.onnx.is_in_onnx_export():
            return action * 0.999
        return action


def test_parity_failure_refused_when_export_differs(tmp_path: Path, make_policy: PolicyFactory) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match="parity check failed") as info:
        export_policy(ExportDiverges(make_policy()), out, CONFIG, n_parity=1000)
    assert "exceeds the allowed" in str(info.value)
    _assert_nothing_written(out)


class Unbounded(nn.Module):
    """A policy-like module whose actions can leave the bounds (no tanh)."""

    def __init__(self, spec: PolicySpec) -> None:
        super().__init__()
        self.spec = spec
        self.linear = nn.Linear(spec.observation.dim, spec.action.dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        action: torch.Tensor = self.linear(obs)
        return action


class LogOfObs(Unbounded):
    """Returns NaN for negative observations."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(torch.log(obs)))


class Sampling(Unbounded):
    """Samples at inference time: not deployable."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean = self.linear(obs)
        return torch.tanh(mean + torch.randn_like(mean))


@pytest.mark.parametrize(
    ("module", "message"),
    [(Unbounded, "leave the bounds"), (LogOfObs, "non-finite actions"), (Sampling, "samples")],
)
def test_unsafe_policies_refused(tmp_path: Path, spec: PolicySpec, module: type[nn.Module], message: str) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match=message):
        export_policy(module(spec), out, CONFIG, n_parity=200)
    _assert_nothing_written(out)


def test_caller_policy_is_not_modified(tmp_path: Path, make_policy: PolicyFactory) -> None:
    policy = make_policy(hidden=(16,)).train()
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    export_policy(policy, tmp_path / "b", CONFIG, n_parity=200)
    assert policy.training
    assert all(p.requires_grad for p in policy.parameters())
    after = policy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_invalid_arguments(tmp_path: Path, make_policy: PolicyFactory) -> None:
    policy = make_policy(hidden=(16,))
    with pytest.raises(ValueError, match="tolerance"):
        export_policy(policy, tmp_path / "a", CONFIG, tolerance=-1.0)
    with pytest.raises(ValueError, match="n_parity"):
        export_policy(policy, tmp_path / "a", CONFIG, n_parity=0)
    with pytest.raises(ValueError, match="training_config"):
        export_policy(policy, tmp_path / "a", {"lr": float("nan")})
    with pytest.raises(ValueError, match="JSON-serializable"):
        export_policy(make_policy(spec=replace(policy.spec, metadata={"path": Path("/")})), tmp_path / "a", CONFIG)
    with pytest.raises(TypeError, match="spec"):
        export_policy(nn.Linear(8, 3), tmp_path / "a", CONFIG)
    assert not (tmp_path / "a").exists()
