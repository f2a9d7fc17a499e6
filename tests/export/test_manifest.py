"""Manifest validation, JSON round trip, atomic writes and source revision (no torch needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from robot_rl.core.specs import PolicySpec
from robot_rl.export.errors import BundleError
from robot_rl.export.manifest import (
    MANIFEST_FILE,
    Manifest,
    atomic_write_text,
    read_manifest,
    source_revision,
    write_manifest,
)


def _manifest(spec: PolicySpec, **overrides: Any) -> Manifest:
    fields: dict[str, Any] = {
        "policy_spec": spec,
        "onnx_sha256": "ab" * 32,
        "onnx_opset": 17,
        "input_shape": ("batch", spec.observation.dim),
        "output_shape": ("batch", spec.action.dim),
        "created_utc": "2025-01-31T12:00:00Z",
        "source_revision": "unknown",
        "parity": {"n_samples": 10_000, "max_abs_diff": 1e-7, "tolerance": 1e-5},
        "training_config": {"algo": "sac", "hidden": [256, 256]},
        "extra": {"note": "test"},
    }
    fields.update(overrides)
    return Manifest(**fields)


def test_round_trip_through_json(spec: PolicySpec) -> None:
    manifest = _manifest(spec)
    data = json.loads(manifest.dumps())
    assert data["input_shape"] == ["batch", 8]
    assert data["format_version"] == 2 and data["policy_spec"]["format"] == 2
    assert data["onnx_file"] == "policy.onnx"
    assert Manifest.from_json(data) == manifest


@pytest.mark.parametrize("missing", ["policy_spec", "onnx_sha256", "parity", "input_shape", "created_utc"])
def test_missing_field_is_named(spec: PolicySpec, missing: str) -> None:
    data = _manifest(spec).to_json()
    del data[missing]
    with pytest.raises(ValueError, match=missing):
        Manifest.from_json(data)


def test_unknown_field_refused(spec: PolicySpec) -> None:
    data = _manifest(spec).to_json()
    data["onnx_sha265"] = "typo"
    with pytest.raises(ValueError, match="unknown fields"):
        Manifest.from_json(data)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("onnx_sha256", "XYZ", "64 lower-case hex"),
        ("onnx_file", "../elsewhere/policy.onnx", "bare file name"),
        ("onnx_file", "/abs/policy.onnx", "bare file name"),
        ("input_shape", ["batch", 9], "input_shape"),
        ("output_shape", [1, 3], "output_shape"),
        ("format_version", 3, "format_version"),
        ("onnx_opset", "17", "onnx_opset"),
        ("created_utc", "yesterday", "created_utc"),
        ("parity", {"n_samples": 10, "max_abs_diff": 1e-3, "tolerance": 1e-5}, "failed check"),
        ("parity", {"n_samples": 10, "tolerance": 1e-5}, "max_abs_diff"),
        ("training_config", ["not", "a", "dict"], "training_config"),
        ("policy_spec", {"observation": {}}, "policy_spec"),
    ],
)
def test_invalid_fields_refused(spec: PolicySpec, key: str, value: Any, message: str) -> None:
    data = _manifest(spec).to_json()
    data[key] = value
    with pytest.raises(ValueError, match=message):
        Manifest.from_json(data)


FLOAT64_PARITY = {
    "n_samples": 11_033,
    "max_abs_diff": 1.92e-5,
    "tolerance": 1e-5,
    "criterion": "float64-reference",
    "hard_ceiling": 1e-3,
    "max_fraction_of_allowed": 0.6,
}


def test_float64_criterion_accepts_diff_beyond_tolerance(spec: PolicySpec) -> None:
    """A bundle accepted because onnxruntime is as accurate as torch against float64 is valid."""
    manifest = _manifest(spec, parity=FLOAT64_PARITY)
    assert Manifest.from_json(json.loads(manifest.dumps())) == manifest


@pytest.mark.parametrize(
    "change",
    [
        {"criterion": "torch-float32"},
        {"criterion": None},
        {"max_fraction_of_allowed": 1.2},
        {"max_fraction_of_allowed": float("nan")},
        {"max_fraction_of_allowed": None},
        {"hard_ceiling": 1e-5},
        {"hard_ceiling": True},
        {"max_abs_diff": 2e-3},
    ],
)
def test_float64_criterion_must_record_a_pass(spec: PolicySpec, change: dict[str, Any]) -> None:
    parity = {**FLOAT64_PARITY, **change}
    parity = {k: v for k, v in parity.items() if v is not None}
    with pytest.raises(ValueError, match="failed check"):
        _manifest(spec, parity=parity)


def test_non_json_values_refused(spec: PolicySpec) -> None:
    with pytest.raises(ValueError, match="training_config"):
        _manifest(spec, training_config={"lr": float("nan")})
    with pytest.raises(ValueError, match="extra"):
        _manifest(spec, extra={"path": Path("/tmp")})


def test_read_manifest_errors(tmp_path: Path, spec: PolicySpec) -> None:
    with pytest.raises(BundleError, match="not found"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_manifest(tmp_path)
    text = _manifest(spec).dumps().replace("1e-07", "NaN")
    (tmp_path / MANIFEST_FILE).write_text(text)
    with pytest.raises(BundleError, match="not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("[]")
    with pytest.raises(BundleError, match="JSON object"):
        read_manifest(tmp_path)


def test_write_then_read(tmp_path: Path, spec: PolicySpec) -> None:
    manifest = _manifest(spec)
    path = write_manifest(tmp_path, manifest)
    assert path == tmp_path / MANIFEST_FILE
    assert read_manifest(tmp_path) == manifest
    assert sorted(os.listdir(tmp_path)) == [MANIFEST_FILE]


def test_atomic_write_replaces_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "newer")
    assert target.read_text() == "new"  # old content intact
    assert os.listdir(tmp_path) == ["file.json"]  # no temp file left behind


def test_source_revision_outside_git(tmp_path: Path) -> None:
    assert source_revision(tmp_path) == "unknown"


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_source_revision_clean_and_dirty(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("commit", "-q", "-m", "init")
    clean = source_revision(tmp_path)
    assert len(clean) == 40 and all(c in "0123456789abcdef" for c in clean)
    (tmp_path / "a.txt").write_text("b")
    assert source_revision(tmp_path) == clean + "-dirty"


def _format1(data: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a manifest JSON the way robot_rl wrote format 1 (untyped `policy_spec.extra`)."""
    spec = dict(data["policy_spec"])
    for key in ("format", "execution_horizon", "obs_history", "action_latency_s", "env_id", "robot", "metadata"):
        spec.pop(key)
    spec["extra"] = extra
    return {**data, "format_version": 1, "policy_spec": spec}


def test_format1_bundle_of_a_plain_env_still_loads(spec: PolicySpec) -> None:
    data = _format1(_manifest(spec).to_json(), {"env_id": "Toy-v0", "step": 3})
    loaded = Manifest.from_json(data)
    assert loaded.policy_spec.env_id == "Toy-v0" and dict(loaded.policy_spec.metadata) == {"step": 3}
    assert loaded.policy_spec.action == spec.action


def test_format1_bundle_of_a_robot_env_is_refused_with_the_reexport_command(spec: PolicySpec) -> None:
    # Format 1 robot bundles emitted normalized actions: loading them as physical would be wrong, so refuse.
    extra = {"env_id": "robot_rl/PandaReach-v0", "action_interface": {"type": "joint_velocity"}}
    data = _format1(_manifest(spec).to_json(), extra)
    data["extra"] = {"run_dir": "runs/sac-reach-s0"}
    with pytest.raises(ValueError, match=r"normalized actions.*robot-rl export runs/sac-reach-s0 --out"):
        Manifest.from_json(data)
