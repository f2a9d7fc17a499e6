"""A LAC bundle carries its Lyapunov critic (`lyapunov.onnx`, manifest `lyapunov`): exported and verified with the
policy, pinned by the policy's hash, refused at load when missing, tampered or its record edited."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from robot_rl.algos.lac.networks import PhysicalLyapunov
from robot_rl.core.robot import physical_to_normalized
from robot_rl.export.errors import BundleError, ExportError
from robot_rl.export.manifest import LYAPUNOV_FILE, MANIFEST_FILE, ONNX_FILE, LyapunovInfo, Manifest, sha256_file
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.nets.certificate import LyapunovCertificate, certificate_of
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.nets.policy import TanhPolicy
from robot_rl.train.from_run import load_run_policy


@pytest.fixture
def lac_copy(lac_cartpole_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(lac_cartpole_bundle, dst)
    return dst


def _edit_manifest(bundle: Path, **lyapunov: Any) -> None:
    path = bundle / MANIFEST_FILE
    data = json.loads(path.read_text())
    data["lyapunov"].update(lyapunov)
    path.write_text(json.dumps(data))


def _pairs(policy: OnnxPolicy, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    act = policy.spec.action
    obs = rng.normal(0.0, 0.5, size=(n, policy.obs_dim)).astype(np.float32)
    action = rng.uniform(act.low_array, act.high_array, size=(n, policy.act_dim)).astype(np.float32)
    return obs, action


def test_the_lac_export_writes_its_critic_and_the_runtime_reproduces_torch(
    lac_cartpole_run: Path, lac_cartpole_bundle: Path
) -> None:
    manifest = json.loads((lac_cartpole_bundle / MANIFEST_FILE).read_text())
    record = manifest["lyapunov"]
    assert record["file"] == LYAPUNOV_FILE and (lac_cartpole_bundle / LYAPUNOV_FILE).is_file()
    assert record["onnx_sha256"] == sha256_file(lac_cartpole_bundle / LYAPUNOV_FILE)
    assert record["alpha3"] == json.loads((lac_cartpole_run / "config.json").read_text())["algo_config"]["alpha3"]
    assert record["parity"]["n_samples"] >= 10_000 and record["parity"]["max_rel_diff"] <= 1e-5
    assert "## Lyapunov critic" in (lac_cartpole_bundle / "README.md").read_text()

    policy = OnnxPolicy.load(lac_cartpole_bundle)
    assert policy.has_lyapunov
    run = load_run_policy(lac_cartpole_run)
    assert run.lyapunov is not None and run.lyapunov.alpha3 == record["alpha3"]
    critic = run.lyapunov.module
    assert isinstance(critic, PhysicalLyapunov)
    obs, action = _pairs(policy, 64)
    got = np.array([policy.lyapunov_value(o, a) for o, a in zip(obs, action, strict=True)])
    with torch.inference_mode():
        want = critic(torch.from_numpy(obs), torch.from_numpy(action)).numpy().astype(np.float64)
        # The physical → normalized map inside is the spec's one (robot_rl.core.robot), what the critic trained on.
        act = policy.spec.action
        norm = physical_to_normalized(action, act.low_array, act.high_array).astype(np.float32)
        inner = critic.critic(critic.normalizer(torch.from_numpy(obs)), torch.from_numpy(norm)).numpy()
    assert (want >= 0).all() and np.ptp(want) > 0
    assert np.all(np.abs(got - want) <= 1e-5 * np.maximum(1.0, np.abs(want)))
    np.testing.assert_allclose(want, inner, rtol=1e-5)
    assert isinstance(policy.lyapunov_value(obs[0], policy.act(obs[0])), float)


def test_a_tampered_critic_file_is_refused(lac_copy: Path) -> None:
    data = bytearray((lac_copy / LYAPUNOV_FILE).read_bytes())
    data[-10] ^= 0x01
    (lac_copy / LYAPUNOV_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"lyapunov\.onnx_sha256 mismatch"):
        OnnxPolicy.load(lac_copy)


def test_a_deleted_critic_file_is_refused(lac_copy: Path) -> None:
    (lac_copy / LYAPUNOV_FILE).unlink()
    with pytest.raises(BundleError, match=r"named by manifest lyapunov\.file is missing"):
        OnnxPolicy.load(lac_copy)


@pytest.mark.parametrize(
    ("edit", "field"),
    [({"alpha3": 0.25}, "lyapunov.alpha3"), ({"onnx_sha256": "0" * 64}, "lyapunov.onnx_sha256")],
)
def test_an_edited_manifest_record_is_refused(lac_copy: Path, edit: dict[str, Any], field: str) -> None:
    _edit_manifest(lac_copy, **edit)
    with pytest.raises(BundleError, match=rf"manifest lyapunov does not match the policy's record.*{field}"):
        OnnxPolicy.load(lac_copy)


def test_a_critic_swapped_and_rehashed_is_refused_by_the_policy_record(lac_copy: Path, tmp_path: Path) -> None:
    # Another critic with a consistent manifest: only the record in the hashed policy graph can tell.
    shutil.copyfile(lac_copy / ONNX_FILE, lac_copy / LYAPUNOV_FILE)
    _edit_manifest(lac_copy, onnx_sha256=sha256_file(lac_copy / LYAPUNOV_FILE))
    with pytest.raises(BundleError, match=r"lyapunov\.onnx_sha256: manifest"):
        OnnxPolicy.load(lac_copy)


def test_a_removed_record_is_refused(lac_copy: Path) -> None:
    path = lac_copy / MANIFEST_FILE
    data = json.loads(path.read_text())
    del data["lyapunov"]
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match="manifest has no lyapunov field but the policy was exported with"):
        OnnxPolicy.load(lac_copy)


def test_a_critic_of_the_wrong_signature_is_refused(lac_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The policy record makes this unreachable through the manifest; the signature check still stands on its own.
    import robot_rl.export.lyapunov_runtime as lyapunov_runtime

    monkeypatch.setattr(lyapunov_runtime, "check_lyapunov_record", lambda session, manifest: None)
    shutil.copyfile(lac_copy / ONNX_FILE, lac_copy / LYAPUNOV_FILE)
    _edit_manifest(lac_copy, onnx_sha256=sha256_file(lac_copy / LYAPUNOV_FILE))
    with pytest.raises(BundleError, match=r"\(manifest lyapunov\.file\) does not match the policy spec: model must"):
        OnnxPolicy.load(lac_copy)


def test_a_bundle_without_a_critic_loads_as_before(bundle: Path) -> None:
    raw = json.loads((bundle / MANIFEST_FILE).read_text())
    assert "lyapunov" not in raw and not (bundle / LYAPUNOV_FILE).exists()
    policy = OnnxPolicy.load(bundle)
    assert not policy.has_lyapunov and policy.lyapunov is None
    with pytest.raises(ValueError, match="carries no Lyapunov critic"):
        policy.lyapunov_value(np.zeros(policy.obs_dim), np.zeros(policy.act_dim))


def test_learners_without_a_critic_offer_none(pendulum_spec: Any, tiny_sac: Any) -> None:
    from robot_rl.algos.sac import SAC

    assert certificate_of(SAC(pendulum_spec, tiny_sac)) is None


def test_re_exporting_without_a_critic_removes_the_old_one(lac_copy: Path) -> None:
    from robot_rl.export.onnx_export import export_policy

    old = OnnxPolicy.load(lac_copy)
    trunk = nn.Linear(old.obs_dim, old.act_dim)
    policy = TanhPolicy(old.spec, ObsNormalizer(old.obs_dim, enabled=False), trunk).eval()
    manifest = export_policy(policy, lac_copy, {"algo": "sac"}, n_parity=200, overwrite=True)
    assert manifest.lyapunov is None and not (lac_copy / LYAPUNOV_FILE).exists()
    assert not OnnxPolicy.load(lac_copy).has_lyapunov


class _Critic(nn.Module):
    """A toy critic `‖W·[obs, action]‖²`, optionally off by 0.1% in the traced graph (an export bug) or negative."""

    def __init__(self, dim: int, traced_gain: float = 1.0, sign: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.f = nn.Linear(dim, 4)
        self.traced_gain, self.sign = traced_gain, sign

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.sign * self.f(torch.cat([obs, action], dim=-1)).pow(2).sum(-1)
        return out * self.traced_gain if torch.onnx.is_in_onnx_export() else out


@pytest.mark.parametrize(
    ("critic", "match"),
    [
        ({"traced_gain": 1.001}, "Lyapunov critic parity check failed"),
        ({"sign": -1.0}, "returns negative values"),
    ],
)
def test_a_bad_critic_is_refused_and_nothing_is_written(
    make_policy: Any, tmp_path: Path, critic: dict[str, Any], match: str
) -> None:
    from robot_rl.export.onnx_export import export_policy

    policy = make_policy().eval()
    dim = policy.spec.observation.dim + policy.spec.action.dim
    certificate = LyapunovCertificate(_Critic(dim, **critic), alpha3=0.5)
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match=match):
        export_policy(policy, out, {"algo": "test"}, n_parity=200, lyapunov=certificate)
    assert not out.exists() or not any(out.iterdir())


def test_manifest_record_round_trip_and_validation(lac_cartpole_bundle: Path) -> None:
    data = json.loads((lac_cartpole_bundle / MANIFEST_FILE).read_text())
    manifest = Manifest.from_json(data)
    assert isinstance(manifest.lyapunov, LyapunovInfo) and manifest.to_json() == data
    record = data["lyapunov"]
    for bad, match in (
        ({**record, "alpha3": -1.0}, "lyapunov.alpha3 must be a finite number >= 0"),
        ({**record, "file": "../x.onnx"}, "lyapunov.file must be a bare file name"),
        ({**record, "parity": {**record["parity"], "max_rel_diff": 1.0}}, "records a failed check"),
        ({k: v for k, v in record.items() if k != "parity"}, "manifest lyapunov must be an object with exactly"),
    ):
        with pytest.raises(ValueError, match=match):
            Manifest.from_json({**data, "lyapunov": bad})
