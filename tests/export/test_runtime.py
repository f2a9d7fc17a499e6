"""OnnxPolicy: verified loading (tamper refusal), act/act_batch contracts, and no torch import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch

from robot_rl.core.types import Policy
from robot_rl.export.errors import BundleError
from robot_rl.export.manifest import MANIFEST_FILE, ONNX_FILE, sha256_file
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.nets.policy import TanhPolicy

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def loaded(bundle: Path) -> OnnxPolicy:
    return OnnxPolicy.load(bundle)


@pytest.fixture
def copy_of(bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the shared bundle that a test may tamper with."""
    dst = tmp_path / "bundle"
    shutil.copytree(bundle, dst)
    return dst


def _edit_manifest(bundle_dir: Path, edit: Any) -> None:
    path = bundle_dir / MANIFEST_FILE
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _torch_act(policy: TanhPolicy, obs: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        action: np.ndarray = policy(torch.from_numpy(np.asarray(obs, np.float32).reshape(1, -1))).numpy()[0]
    return action


# --- act / act_batch ---------------------------------------------------------------------------


def test_implements_policy_protocol(loaded: OnnxPolicy, policy: TanhPolicy) -> None:
    assert isinstance(loaded, Policy)
    assert loaded.spec == policy.spec
    assert (loaded.obs_dim, loaded.act_dim) == (8, 3)
    loaded.reset()


def test_act_matches_torch_and_returns_fresh_arrays(loaded: OnnxPolicy, policy: TanhPolicy) -> None:
    rng = np.random.default_rng(3)
    previous = None
    for _ in range(50):
        obs = rng.normal(0.0, 2.0, size=8).astype(np.float32)
        action = loaded.act(obs)
        assert action.shape == (3,) and action.dtype == np.float32
        np.testing.assert_allclose(action, _torch_act(policy, obs), rtol=0, atol=1e-5)
        if previous is not None:  # the returned array must not alias the reused output buffer
            assert not np.shares_memory(action, previous)
        previous = action


def test_act_accepts_common_array_forms(loaded: OnnxPolicy) -> None:
    obs = np.linspace(-1.0, 1.0, 8)
    expected = loaded.act(obs.astype(np.float32))
    np.testing.assert_array_equal(loaded.act(obs), expected)  # float64
    np.testing.assert_array_equal(loaded.act(obs.tolist()), expected)  # list
    np.testing.assert_array_equal(loaded.act(obs.reshape(1, 8)), expected)  # [1, obs_dim]
    np.testing.assert_array_equal(loaded.act(np.zeros(8, dtype=np.int64)), loaded.act(np.zeros(8)))


def test_mapping_observation_follows_spec_order(loaded: OnnxPolicy, policy: TanhPolicy) -> None:
    parts = {
        "joint_pos": np.array([0.1, -0.2, 0.3]),
        "joint_vel": np.array([1.0, 2.0, -1.0]),
        "goal": np.array([[0.5], [-0.5]]),  # any shape with the right element count
    }
    flat = np.concatenate([parts["joint_pos"], parts["joint_vel"], parts["goal"].ravel()]).astype(np.float32)
    shuffled = {k: parts[k] for k in ("goal", "joint_vel", "joint_pos")}  # insertion order must not matter
    action = loaded.act(shuffled)
    np.testing.assert_array_equal(action, loaded.act(flat))
    np.testing.assert_allclose(action, _torch_act(policy, flat), rtol=0, atol=1e-5)
    swapped = dict(parts, joint_pos=parts["joint_vel"], joint_vel=parts["joint_pos"])
    assert not np.allclose(loaded.act(swapped), action)


@pytest.mark.parametrize(
    ("obs", "message"),
    [
        (np.array([0.0] * 7 + [np.nan]), "not finite"),
        (np.array([np.inf] + [0.0] * 7), "not finite"),
        (np.array([1e300] + [0.0] * 7), "not finite"),  # overflows float32
        (np.zeros(7), "shape"),
        (np.zeros(9), "shape"),
        (np.zeros((2, 8)), "shape"),
        (np.zeros((8, 1)), "shape"),
        (np.array(["a"] * 8), "dtype"),
        (np.zeros(8, dtype=bool), "dtype"),
    ],
)
def test_act_rejects_bad_observations(loaded: OnnxPolicy, obs: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        loaded.act(obs)


def test_act_names_non_finite_entry(loaded: OnnxPolicy) -> None:
    obs = {"joint_pos": [0.0, 0.0, 0.0], "joint_vel": [0.0, np.nan, 0.0], "goal": [0.0, 0.0]}
    with pytest.raises(ValueError, match=r"\[4\].*joint_vel"):
        loaded.act(obs)
    with pytest.raises(ValueError, match="missing key 'goal'"):
        loaded.act({"joint_pos": [0.0] * 3, "joint_vel": [0.0] * 3})


def test_act_batch(loaded: OnnxPolicy, policy: TanhPolicy) -> None:
    obs = np.random.default_rng(4).normal(size=(16, 8))
    with torch.inference_mode():
        expected = policy(torch.from_numpy(obs.astype(np.float32))).numpy()
    np.testing.assert_allclose(loaded.act_batch(obs), expected, rtol=0, atol=1e-5)
    for bad in (np.zeros(8), np.zeros((0, 8)), np.zeros((4, 7))):
        with pytest.raises(ValueError, match="shape"):
            loaded.act_batch(bad)
    obs[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"rows \[5\]"):
        loaded.act_batch(obs)


def test_check_action_names(loaded: OnnxPolicy) -> None:
    loaded.check_action_names(["hip", "knee", "ankle"])
    with pytest.raises(BundleError, match=r"missing from bundle \['wrist'\], extra in bundle \['ankle'\]"):
        loaded.check_action_names(["hip", "knee", "wrist"])
    with pytest.raises(BundleError, match="different order"):
        loaded.check_action_names(["knee", "hip", "ankle"])


def test_thread_count_is_configurable(bundle: Path) -> None:
    assert OnnxPolicy.load(bundle, intra_op_num_threads=2).act(np.zeros(8)).shape == (3,)
    with pytest.raises(ValueError, match="intra_op_num_threads"):
        OnnxPolicy.load(bundle, intra_op_num_threads=0)


# --- refusal of tampered / mismatched bundles ---------------------------------------------------


def test_flipped_byte_refused(copy_of: Path) -> None:
    expected = sha256_file(copy_of / ONNX_FILE)
    data = bytearray((copy_of / ONNX_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy_of / ONNX_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError) as info:
        OnnxPolicy.load(copy_of)
    message = str(info.value)
    assert message.startswith(f"sha256 mismatch: manifest says {expected}, file is ")
    assert message.endswith("the model file was modified or corrupted")


def test_pinned_hash_mismatch_refused(bundle: Path) -> None:
    OnnxPolicy.load(bundle, expected_sha256=sha256_file(bundle / ONNX_FILE).upper())
    with pytest.raises(BundleError, match="pinned"):
        OnnxPolicy.load(bundle, expected_sha256="0" * 64)


def test_edited_action_bounds_refused(copy_of: Path) -> None:
    _edit_manifest(copy_of, lambda m: m["policy_spec"]["action"].update(high=[2.0, 1.5, 0.5]))
    with pytest.raises(BundleError, match="does not match the spec embedded"):
        OnnxPolicy.load(copy_of)


def test_edited_observation_layout_refused(copy_of: Path) -> None:
    def swap_keys(m: dict[str, Any]) -> None:
        m["policy_spec"]["observation"]["keys"] = ["joint_vel", "joint_pos", "goal"]

    _edit_manifest(copy_of, swap_keys)
    with pytest.raises(BundleError, match="does not match the spec embedded"):
        OnnxPolicy.load(copy_of)


def test_edited_observation_dim_refused(copy_of: Path) -> None:
    def grow(m: dict[str, Any]) -> None:
        m["policy_spec"]["observation"]["shapes"][2] = [3]
        m["input_shape"] = ["batch", 9]

    _edit_manifest(copy_of, grow)
    with pytest.raises(BundleError, match=r"shape \['batch', 8\], expected \['batch', 9\]"):
        OnnxPolicy.load(copy_of)


def test_edited_io_name_refused(copy_of: Path) -> None:
    _edit_manifest(copy_of, lambda m: m.update(input_name="observation"))
    with pytest.raises(BundleError, match="input is named 'obs', expected 'observation'"):
        OnnxPolicy.load(copy_of)


def test_failed_parity_record_refused(copy_of: Path) -> None:
    _edit_manifest(copy_of, lambda m: m["parity"].update(max_abs_diff=1.0))
    with pytest.raises(BundleError, match="failed check"):
        OnnxPolicy.load(copy_of)


def test_missing_files_refused(copy_of: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        OnnxPolicy.load(tmp_path / "nowhere")
    (copy_of / ONNX_FILE).unlink()
    with pytest.raises(BundleError, match="missing"):
        OnnxPolicy.load(copy_of)
    (copy_of / MANIFEST_FILE).unlink()
    with pytest.raises(BundleError, match="not found"):
        OnnxPolicy.load(copy_of)


def test_invalid_manifest_json_refused(copy_of: Path) -> None:
    (copy_of / MANIFEST_FILE).write_text('{"format_version": 1,')
    with pytest.raises(BundleError, match="not valid JSON"):
        OnnxPolicy.load(copy_of)


def _rewrite_model(bundle_dir: Path, model: onnx.ModelProto, **save_kwargs: Any) -> None:
    onnx.save(model, bundle_dir / ONNX_FILE, **save_kwargs)
    digest = sha256_file(bundle_dir / ONNX_FILE)  # an attacker who also updates the hash
    _edit_manifest(bundle_dir, lambda m: m.update(onnx_sha256=digest))


def test_external_data_refused(copy_of: Path) -> None:
    model = onnx.load(str(copy_of / ONNX_FILE))
    _rewrite_model(copy_of, model, save_as_external_data=True, location="weights.bin", size_threshold=0)
    assert (copy_of / "weights.bin").exists()
    with pytest.raises(BundleError, match="external data"):
        OnnxPolicy.load(copy_of)


def test_model_without_embedded_spec_refused(copy_of: Path) -> None:
    model = onnx.load(str(copy_of / ONNX_FILE))
    del model.metadata_props[:]
    _rewrite_model(copy_of, model)
    with pytest.raises(BundleError, match="not exported by robot_rl"):
        OnnxPolicy.load(copy_of)


def test_sampling_graph_refused(copy_of: Path) -> None:
    model = onnx.load(str(copy_of / ONNX_FILE))
    out = model.graph.output[0].name
    # Rename the real output and add noise to it: the graph now samples at inference time.
    for node in model.graph.node:
        node.output[:] = [f"{o}_mean" if o == out else o for o in node.output]
    model.graph.node.extend(
        [
            onnx.helper.make_node("RandomNormalLike", [f"{out}_mean"], ["noise"]),
            onnx.helper.make_node("Add", [f"{out}_mean", "noise"], [out]),
        ]
    )
    _rewrite_model(copy_of, model)
    with pytest.raises(BundleError, match="sampling operators"):
        OnnxPolicy.load(copy_of)


def test_non_finite_action_raises(copy_of: Path) -> None:
    # A (re-hashed) graph that takes log(obs): finite negative observations give NaN actions.
    model = onnx.load(str(copy_of / ONNX_FILE))
    for node in model.graph.node:
        node.input[:] = ["obs_log" if name == "obs" else name for name in node.input]
    model.graph.node.insert(0, onnx.helper.make_node("Log", ["obs"], ["obs_log"]))
    _rewrite_model(copy_of, model)
    loaded = OnnxPolicy.load(copy_of)
    assert np.isfinite(loaded.act(np.ones(8))).all()
    with pytest.raises(RuntimeError, match="non-finite action"):
        loaded.act(-np.ones(8))
    with pytest.raises(RuntimeError, match="non-finite actions in rows"):
        loaded.act_batch(-np.ones((2, 8)))


def test_garbage_model_refused(copy_of: Path) -> None:
    (copy_of / ONNX_FILE).write_bytes(b"\x08\x07garbage that is not a model")
    digest = sha256_file(copy_of / ONNX_FILE)
    _edit_manifest(copy_of, lambda m: m.update(onnx_sha256=digest))
    with pytest.raises(BundleError):
        OnnxPolicy.load(copy_of)


# --- the robot side never imports torch ----------------------------------------------------------


def test_runtime_does_not_import_torch(bundle: Path) -> None:
    code = (
        "import sys\n"
        "import robot_rl.export\n"
        "from robot_rl.export.runtime import OnnxPolicy\n"
        f"policy = OnnxPolicy.load({str(bundle)!r})\n"
        "action = policy.act([0.0] * policy.obs_dim)\n"
        "assert action.shape == (3,), action\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
