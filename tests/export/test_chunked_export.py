"""Exporting chunked sampler policies: one verified bundle per K, parity with fixed noise, refusals."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.export import onnx_export
from robot_rl.export.errors import BundleError, ExportError
from robot_rl.export.manifest import (
    MANIFEST_FILE,
    MODEL_CARD_FILE,
    ONNX_FILE,
    Manifest,
    SamplerInfo,
    read_manifest,
    sha256_file,
)
from robot_rl.export.onnx_export import export_policy, export_sampler_variants, parity_noise
from robot_rl.export.onnx_scan import scan_onnx
from robot_rl.export.runtime import OnnxPolicy
from tests.export.chunked_sampler import EulerChunkSampler, FixedSteps, chunk_spec

CONFIG = {"algo": "flow", "lr": 1e-3}
STEPS = (1, 2, 10)
H, A, T_O, OBS = 8, 2, 2, 4


@pytest.fixture(scope="module")
def sampler() -> EulerChunkSampler:
    return EulerChunkSampler(chunk_spec(), steps=4).eval()


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, sampler: EulerChunkSampler) -> dict[int, Path]:
    """The same weights exported with K = 1, 2 and 10, each with the full (10^4-observation) parity check."""
    root = tmp_path_factory.mktemp("variants")
    export_sampler_variants(sampler, root, STEPS, CONFIG, extra={"run": "test"})
    return {k: root / f"k{k}" for k in STEPS}


def _fresh_inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.normal(0.0, 2.0, size=(n, T_O * OBS)).astype(np.float32)
    return obs, rng.standard_normal((n, H, A), dtype=np.float32)


def _torch_chunks(policy: nn.Module, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out: np.ndarray = policy(torch.from_numpy(obs), torch.from_numpy(noise)).numpy()
    return out


def test_one_verified_bundle_per_k(variants: dict[int, Path], sampler: EulerChunkSampler) -> None:
    for k, path in variants.items():
        manifest = read_manifest(path)
        assert manifest.sampler == SamplerInfo(kind="flow", steps=k)
        assert manifest.noise_name == "noise" and manifest.noise_shape == ("batch", H, A)
        assert manifest.input_shape == ("batch", T_O * OBS) and manifest.output_shape == ("batch", H, A)
        spec = manifest.policy_spec
        assert (spec.chunk_size, spec.execution_horizon, spec.obs_history) == (H, 3, T_O)
        assert spec == sampler.spec
        # The SAC parity contract, per K: >= 10^4 random + boundary observations, each with fixed noise.
        parity = manifest.parity
        assert parity["n_random"] >= 10_000 and parity["n_boundary"] > 0
        assert parity["n_samples"] == parity["n_random"] + parity["n_boundary"]
        assert parity["max_abs_diff"] <= parity["tolerance"] == 1e-5
        assert parity["max_fraction_of_allowed"] <= 1.0
        assert parity["noise_shape"] == [H, A] and parity["actions_per_observation"] == H
        assert manifest.extra == {"run": "test", "sampler_steps": k}
        assert manifest.onnx_sha256 == sha256_file(path / ONNX_FILE)
        card = (path / MODEL_CARD_FILE).read_text()
        assert f"flow, K = {k} steps" in card and "noise input" in card
    assert sampler.sampler_steps == 4  # the caller's module is untouched


def test_graph_takes_noise_and_samples_nothing(variants: dict[int, Path]) -> None:
    scan = scan_onnx((variants[10] / ONNX_FILE).read_bytes())
    assert scan.sampling_ops == frozenset() and scan.external_tensors == ()
    policy = OnnxPolicy.load(variants[10])
    assert [i.name for i in policy.session.get_inputs()] == ["obs", "noise"]
    assert policy.session.get_outputs()[0].shape == ["batch", H, A]


@pytest.mark.parametrize("k", STEPS)
def test_bundle_reproduces_torch_with_fixed_noise(
    variants: dict[int, Path], sampler: EulerChunkSampler, k: int
) -> None:
    """Fresh observations and noise (not the export's): batched and batch-1 plans equal torch's K-step sampler."""
    obs, noise = _fresh_inputs(10_000, seed=100 + k)
    expected = _torch_chunks(sampler.with_steps(k).eval(), obs, noise)
    policy = OnnxPolicy.load(variants[k])
    half_range = (np.array(sampler.spec.action.high) - np.array(sampler.spec.action.low)) / 2
    got = policy.plan_batch(obs, noise)
    assert got.shape == (10_000, H, A) and got.dtype == np.float32
    assert float((np.abs(got - expected) / half_range).max()) <= 1e-5
    for i in range(0, 10_000, 997):
        np.testing.assert_allclose(policy.plan(obs[i], noise[i]), expected[i], rtol=0, atol=1e-5)
    low, high = np.array(sampler.spec.action.low), np.array(sampler.spec.action.high)
    assert ((got >= low - 1e-6) & (got <= high + 1e-6)).all()


def test_k_changes_the_chunk_and_noise_matters(variants: dict[int, Path]) -> None:
    obs, noise = _fresh_inputs(64, seed=7)
    k1, k10 = OnnxPolicy.load(variants[1]), OnnxPolicy.load(variants[10])
    assert float(np.abs(k1.plan_batch(obs, noise) - k10.plan_batch(obs, noise)).max()) > 1e-3
    other = np.random.default_rng(8).standard_normal(noise.shape, dtype=np.float32)
    assert float(np.abs(k10.plan_batch(obs, noise) - k10.plan_batch(obs, other)).min(axis=(1, 2)).max()) > 0
    assert (np.abs(k10.plan_batch(obs, noise) - k10.plan_batch(obs, other)).max(axis=(1, 2)) > 1e-4).all()


def test_parity_noise_is_fixed_by_the_seed() -> None:
    a, b = parity_noise((H, A), 100, seed=3), parity_noise((H, A), 100, seed=3)
    assert a.shape == (100, H, A) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, parity_noise((H, A), 100, seed=4))


def test_model_swapped_between_k_variants_refused(variants: dict[int, Path], tmp_path: Path) -> None:
    """K=2 weights-and-graph under the K=1 manifest, re-hashed: the embedded sampler record names the field."""
    dst = tmp_path / "swapped"
    shutil.copytree(variants[1], dst)
    shutil.copyfile(variants[2] / ONNX_FILE, dst / ONNX_FILE)
    data = json.loads((dst / MANIFEST_FILE).read_text())
    data["onnx_sha256"] = sha256_file(dst / ONNX_FILE)
    (dst / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"manifest sampler\.steps 1 does not match the model's 2") as err:
        OnnxPolicy.load(dst)
    assert "\n" not in str(err.value)


def test_k_that_the_module_cannot_change_refused(tmp_path: Path, sampler: EulerChunkSampler) -> None:
    fixed = FixedSteps(sampler).eval()
    with pytest.raises(ValueError, match=r"no with_steps\(k\): cannot export K=2"):
        export_policy(fixed, tmp_path / "b", CONFIG, sampler_steps=2)
    with pytest.raises(ValueError, match="positive integer"):
        export_policy(sampler, tmp_path / "b", CONFIG, sampler_steps=0)
    with pytest.raises(ValueError, match="distinct"):
        export_sampler_variants(sampler, tmp_path / "v", [2, 2], CONFIG)
    assert not (tmp_path / "b").exists()


def test_own_k_exports_without_with_steps(tmp_path: Path, sampler: EulerChunkSampler) -> None:
    manifest = export_policy(FixedSteps(sampler).eval(), tmp_path / "b", CONFIG, n_parity=500, sampler_steps=4)
    assert manifest.sampler == SamplerInfo(kind="flow", steps=4)


def test_sampler_export_bug_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sampler: EulerChunkSampler
) -> None:
    """A graph whose velocity field is 0.1% off is refused by the parity rule, as for SAC."""
    real_export = onnx_export._export_onnx

    def export_tampered(model: nn.Module, spec: PolicySpec, work: Path, opset: int) -> tuple[bytes, int]:
        bad = copy.deepcopy(model)
        with torch.no_grad():
            bad.velocity[2].weight.mul_(1.001)  # type: ignore[index, union-attr]
        return real_export(bad, spec, work, opset)

    monkeypatch.setattr(onnx_export, "_export_onnx", export_tampered)
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match=r"parity check failed.*bundle not written"):
        export_policy(sampler, out, CONFIG, n_parity=2000)
    assert not out.exists()


def test_spec_and_module_must_agree(tmp_path: Path) -> None:
    policy = EulerChunkSampler(chunk_spec(), steps=2).eval()
    policy.chunk_size = 4
    with pytest.raises(ExportError, match=r"policy\.chunk_size is 4 but its spec says 8"):
        export_policy(policy, tmp_path / "b", CONFIG, n_parity=100)
    assert not (tmp_path / "b").exists()


def test_deterministic_chunked_policy_without_noise(tmp_path: Path) -> None:
    """A chunked policy without a noise input (BC on chunks) exports and plans; noise is then refused."""
    policy = EulerChunkSampler(chunk_spec(), steps=2, noise=False).eval()
    manifest = export_policy(policy, tmp_path / "b", CONFIG, n_parity=1000)
    assert manifest.noise_name is None and manifest.noise_shape is None
    assert manifest.to_json()["noise_name"] is None and manifest.sampler == SamplerInfo(kind="flow", steps=2)
    loaded = OnnxPolicy.load(tmp_path / "b")
    assert loaded.noise_shape is None
    obs = np.linspace(-1, 1, T_O * OBS, dtype=np.float32)
    with torch.inference_mode():
        expected = policy(torch.from_numpy(obs[None]))[0].numpy()
    np.testing.assert_allclose(loaded.plan(obs), expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="takes no noise"):
        loaded.plan(obs, np.zeros((H, A)))


def test_history_sampler_with_chunk_one(tmp_path: Path) -> None:
    """T_o = 2, H = 1 with noise: plan returns [1, A], act keeps the history and replans every step."""
    spec = chunk_spec(chunk_size=1, execution_horizon=0)
    policy = EulerChunkSampler(spec, steps=3).eval()
    manifest = export_policy(policy, tmp_path / "b", CONFIG, n_parity=1000)
    assert manifest.output_shape == ("batch", A) and manifest.noise_shape == ("batch", 1, A)
    loaded = OnnxPolicy.load(tmp_path / "b", seed=5)
    obs = np.array([0.1, -0.2, 0.3, 0.4], np.float32)
    noise = np.full((1, A), 0.5, np.float32)
    with torch.inference_mode():
        expected = policy(torch.from_numpy(np.tile(obs, 2)[None]), torch.from_numpy(noise[None]))[0].numpy()
    np.testing.assert_allclose(loaded.plan(np.tile(obs, 2), noise)[0], expected, rtol=0, atol=1e-5)
    assert loaded.plan(np.tile(obs, 2)).shape == (1, A)
    for _ in range(3):
        loaded.act(obs)
        assert loaded.replanned


def test_manifest_round_trip_with_sampler_fields(variants: dict[int, Path]) -> None:
    manifest = read_manifest(variants[2])
    data: dict[str, Any] = json.loads(manifest.dumps())
    assert data["sampler"] == {"kind": "flow", "steps": 2} and data["noise_shape"] == ["batch", H, A]
    assert Manifest.from_json(data) == manifest
    data["noise_shape"] = ["batch", 0, A]
    with pytest.raises(ValueError, match="noise_shape"):
        Manifest.from_json(data)
    data["noise_shape"] = ["batch", H, A]
    data["sampler"] = {"kind": "flow", "steps": 0}
    with pytest.raises(ValueError, match=r"sampler\.steps"):
        Manifest.from_json(data)
    del data["noise_name"]
    data["sampler"] = {"kind": "flow", "steps": 2}
    with pytest.raises(ValueError, match="given together"):
        Manifest.from_json(data)
