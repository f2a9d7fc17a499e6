"""Models you can trust (issue 11): pins and Ed25519 signatures refuse a swapped, re-hashed bundle; spec diffs."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from robot_rl.export.errors import BundleError
from robot_rl.export.json_diff import format_diff, json_diff
from robot_rl.export.manifest import MANIFEST_FILE, ONNX_FILE, sha256_file
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.export.sign_cli import main as sign_main
from robot_rl.export.signing import (
    SIGNATURE_FILE,
    generate_key,
    key_id,
    load_private_key,
    public_key_path,
    sign_bundle,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def copy_of(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(bundle, dst)
    return dst


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two key pairs: "lab" (trusted) and "other" (not)."""
    root = tmp_path_factory.mktemp("keys")
    out: dict[str, Path] = {}
    for name in ("lab", "other"):
        private, public, _ = generate_key(root / f"{name}.pem")
        out[name], out[f"{name}.pub"] = private, public
    return out


def _edit_manifest(bundle_dir: Path, edit: Any) -> None:
    path = bundle_dir / MANIFEST_FILE
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def _swap_weights_and_rehash(bundle_dir: Path) -> str:
    """The attack of issue 11: change a weight, keep the embedded spec, update the manifest's hash to match."""
    model = onnx.load_model_from_string((bundle_dir / ONNX_FILE).read_bytes())
    init = next(t for t in model.graph.initializer if numpy_helper.to_array(t).size > 4)
    values = numpy_helper.to_array(init).copy()
    values.flat[0] += np.float32(0.5)
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    (bundle_dir / ONNX_FILE).write_bytes(model.SerializeToString())
    new_sha = sha256_file(bundle_dir / ONNX_FILE)
    _edit_manifest(bundle_dir, lambda m: m.update(onnx_sha256=new_sha))
    return new_sha


# --- pinning ---------------------------------------------------------------------------------------


def test_swapped_rehashed_weights_load_unpinned_but_are_refused_when_pinned(copy_of: Path) -> None:
    original = sha256_file(copy_of / ONNX_FILE)
    swapped = _swap_weights_and_rehash(copy_of)
    assert swapped != original
    # Without a pin the bundle is self-consistent: this is exactly why deployments pin by default.
    assert OnnxPolicy.load(copy_of).manifest.onnx_sha256 == swapped
    with pytest.raises(BundleError) as info:
        OnnxPolicy.load(copy_of, expected_sha256=original)
    message = str(info.value)
    assert "\n" not in message and original in message and swapped in message and "pinned" in message


def test_swapped_rehashed_weights_are_refused_by_signature(copy_of: Path, keys: dict[str, Path]) -> None:
    sign_bundle(copy_of, keys["lab"])
    _swap_weights_and_rehash(copy_of)
    with pytest.raises(BundleError, match="changed after signing") as info:
        OnnxPolicy.load(copy_of, trusted_keys=[keys["lab.pub"]])
    assert "\n" not in str(info.value)


# --- signatures ------------------------------------------------------------------------------------


def test_signature_round_trip(copy_of: Path, keys: dict[str, Path]) -> None:
    path = sign_bundle(copy_of, keys["lab"])
    assert path == copy_of / SIGNATURE_FILE
    record = json.loads(path.read_text())
    assert record["algorithm"] == "ed25519" and record["signed_file"] == MANIFEST_FILE
    policy = OnnxPolicy.load(copy_of, trusted_keys=[keys["other.pub"], keys["lab.pub"]])
    assert policy.signer_key_id == record["key_id"]
    assert OnnxPolicy.load(copy_of).signer_key_id is None  # no keys: nothing checked, nothing claimed


def test_signed_by_another_key_refused(copy_of: Path, keys: dict[str, Path]) -> None:
    sign_bundle(copy_of, keys["other"])
    with pytest.raises(BundleError, match="not a trusted key") as info:
        OnnxPolicy.load(copy_of, trusted_keys=[keys["lab.pub"]])
    assert "\n" not in str(info.value)


def test_forged_key_id_refused(copy_of: Path, keys: dict[str, Path]) -> None:
    # Signed by "other" but claiming the lab key's id: the signature itself must fail.
    sign_bundle(copy_of, keys["other"])
    lab_id = key_id(load_private_key(keys["lab"]).public_key())
    sig = copy_of / SIGNATURE_FILE
    record = json.loads(sig.read_text())
    record["key_id"] = lab_id
    sig.write_text(json.dumps(record))
    with pytest.raises(BundleError, match="does not match"):
        OnnxPolicy.load(copy_of, trusted_keys=[keys["lab.pub"]])


def test_manifest_edited_after_signing_refused(copy_of: Path, keys: dict[str, Path]) -> None:
    sign_bundle(copy_of, keys["lab"])
    _edit_manifest(copy_of, lambda m: m["extra"].update(note="edited"))
    OnnxPolicy.load(copy_of)  # still a consistent bundle: only the signature notices
    with pytest.raises(BundleError, match="manifest was changed after signing"):
        OnnxPolicy.load(copy_of, trusted_keys=[keys["lab.pub"]])


def test_unsigned_bundle_refused_only_when_keys_are_configured(copy_of: Path, keys: dict[str, Path]) -> None:
    OnnxPolicy.load(copy_of)
    OnnxPolicy.load(copy_of, trusted_keys=[])
    with pytest.raises(BundleError, match=r"is not signed \(no signature\.json\)"):
        OnnxPolicy.load(copy_of, trusted_keys=[keys["lab.pub"]])


def test_unreadable_trusted_key_refused(copy_of: Path, tmp_path: Path, keys: dict[str, Path]) -> None:
    sign_bundle(copy_of, keys["lab"])
    bad = tmp_path / "bad.pub.pem"
    bad.write_text("not a key\n")
    with pytest.raises(BundleError, match=r"bad\.pub\.pem"):
        OnnxPolicy.load(copy_of, trusted_keys=[bad])
    with pytest.raises(BundleError, match=r"missing\.pem"):
        OnnxPolicy.load(copy_of, trusted_keys=[tmp_path / "missing.pem"])


def test_generated_private_key_is_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    private, public, kid = generate_key(tmp_path / "k.pem")
    assert public == public_key_path(private) == tmp_path / "k.pub.pem"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert "PRIVATE KEY" in private.read_text() and "PUBLIC KEY" in public.read_text()
    assert len(kid) == 16
    with pytest.raises(FileExistsError):
        generate_key(private)


def test_sign_cli(copy_of: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "cli.pem"
    assert sign_main(["--generate-key", str(key)]) == 0
    assert sign_main(["--bundle", str(copy_of), "--verify", str(public_key_path(key))]) == 1  # not signed yet
    assert sign_main(["--bundle", str(copy_of), "--key", str(key)]) == 0
    assert (copy_of / SIGNATURE_FILE).is_file()
    assert sign_main(["--bundle", str(copy_of), "--verify", str(public_key_path(key))]) == 0
    assert "ok, signed by key" in capsys.readouterr().out
    assert sign_main(["--bundle", str(copy_of)]) == 2
    # A tampered bundle is never signed: the signature would vouch for it.
    (copy_of / ONNX_FILE).write_bytes(b"garbage")
    assert sign_main(["--bundle", str(copy_of), "--key", str(key)]) == 1
    assert "refused" in capsys.readouterr().err


def test_signed_load_does_not_import_torch(copy_of: Path, keys: dict[str, Path]) -> None:
    sign_bundle(copy_of, keys["lab"])
    code = (
        "import sys\n"
        "from robot_rl.export.runtime import OnnxPolicy\n"
        f"p = OnnxPolicy.load({str(copy_of)!r}, trusted_keys=[{str(keys['lab.pub'])!r}])\n"
        "assert p.signer_key_id\n"
        "assert not [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- spec mismatch names the field ------------------------------------------------------------------


def test_spec_mismatch_names_the_differing_field(copy_of: Path) -> None:
    _edit_manifest(copy_of, lambda m: m["policy_spec"]["action"].update(high=[2.0, 1.5, 0.5]))
    with pytest.raises(BundleError) as info:
        OnnxPolicy.load(copy_of)
    lines = str(info.value).splitlines()
    assert lines[1:] == ["policy_spec.action.high[0]: manifest 2.0, model 1.0"]
    assert len(str(info.value)) < 300  # the field, not two dumps of the whole spec


def test_json_diff_names_each_leaf() -> None:
    a = {"action": {"high": [1.0, 2.1], "names": ["a"]}, "hz": 50, "flag": True}
    b = {"action": {"high": [1.0, 2.175], "names": ["a", "b"]}, "hz": 50.0, "flag": 1, "new": "x"}
    assert json_diff(a, b, "spec", names=("manifest", "model")) == [
        "spec.action.high[1]: manifest 2.1, model 2.175",
        'spec.action.names[1]: manifest <missing>, model "b"',
        "spec.flag: manifest true, model 1",
        'spec.new: manifest <missing>, model "x"',
    ]
    assert json_diff(a, a) == []
    assert json_diff(1, "1") == ['<root>: a 1, b "1"']
    assert format_diff([f"f{i}" for i in range(5)], limit=2).splitlines() == ["f0", "f1", "... and 3 more field(s)"]
