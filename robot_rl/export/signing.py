"""Ed25519 signatures of policy bundles: who produced this bundle (numpy-free, torch-free; uses `cryptography`).

The signature covers the exact bytes of `manifest.json`, and the manifest carries the ONNX file's sha256, so
one signature vouches for the model and its contract. It is detached (`signature.json` beside the manifest), so
signing never rewrites the manifest and an unsigned bundle stays loadable where no keys are configured.

    signature.json = {"format": 1, "algorithm": "ed25519", "key_id": "<16 hex>",
                      "signed_file": "manifest.json", "manifest_sha256": "<64 hex>", "signature": "<base64>"}

`manifest_sha256` is informational (it lets a reader see which manifest was signed); only `signature` is
trusted, and only after it verifies against a configured public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from robot_rl.core.fileio import atomic_write_text
from robot_rl.export.errors import BundleError
from robot_rl.export.manifest import MANIFEST_FILE

SIGNATURE_FILE = "signature.json"
"""File name of the detached signature inside a bundle directory."""
ALGORITHM = "ed25519"
"""The only signature algorithm written and accepted."""
SIGNATURE_FORMAT = 1
"""Layout version of `signature.json`."""
_FIELDS = ("format", "algorithm", "key_id", "signed_file", "manifest_sha256", "signature")


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: the first 16 hex digits of sha256 over its 32 raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class TrustedKey:
    """A public key a deployment accepts bundle signatures from."""

    key_id: str
    """Fingerprint (`key_id`) of the key."""
    public_key: Ed25519PublicKey
    """The Ed25519 public key."""
    path: str
    """Where it was read from (for messages)."""


def public_key_path(private_key_path: str | os.PathLike[str]) -> Path:
    """Where `generate_key` puts the public half: `key.pem` → `key.pub.pem`."""
    path = Path(private_key_path)
    stem = path.name[: -len(".pem")] if path.name.endswith(".pem") else path.name
    return path.with_name(stem + ".pub.pem")


def generate_key(private_key_path: str | os.PathLike[str]) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key pair: the private key (PKCS#8 PEM, mode 0600) and its public key beside it.

    Returns (private key path, public key path, key id).

    Raises:
        FileExistsError: either file exists already (a key is never overwritten).
    """
    private_path = Path(private_key_path)
    public_path = public_key_path(private_path)
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; refusing to overwrite a key (choose another name)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # O_EXCL + mode 0600 at creation: the private key is never readable by others, not even for an instant.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    public = key.public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path, key_id(public)


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Read an unencrypted Ed25519 private key PEM.

    Raises:
        ValueError: unreadable, not a PEM private key, or not Ed25519.
    """
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot read private key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"private key {path} is {type(key).__name__}, expected an Ed25519 key")
    return key


def load_trusted_keys(paths: Sequence[str | os.PathLike[str]]) -> tuple[TrustedKey, ...]:
    """Read public-key PEM files (as `generate_key` writes them).

    Raises:
        BundleError: a file is missing, not a PEM public key, or not Ed25519 (a deployment that asked for
            signatures must not silently run with fewer keys than configured).
    """
    keys: list[TrustedKey] = []
    for p in paths:
        try:
            key = serialization.load_pem_public_key(Path(p).read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise BundleError(f"trusted key {str(p)!r} cannot be read as a PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise BundleError(f"trusted key {str(p)!r} is {type(key).__name__}, expected an Ed25519 public key")
        keys.append(TrustedKey(key_id(key), key, str(p)))
    return tuple(keys)


def sign_manifest_bytes(manifest_bytes: bytes, private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The `signature.json` record for these exact manifest bytes."""
    return {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "key_id": key_id(private_key.public_key()),
        "signed_file": MANIFEST_FILE,
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "signature": base64.b64encode(private_key.sign(manifest_bytes)).decode("ascii"),
    }


def sign_bundle(bundle_dir: str | os.PathLike[str], private_key_path: str | os.PathLike[str]) -> Path:
    """Sign `bundle_dir/manifest.json` and atomically write `bundle_dir/signature.json`; returns its path.

    Verify the bundle first (`OnnxPolicy.load`): a signature vouches for whatever the manifest says.
    """
    root = Path(bundle_dir)
    manifest_path = root / MANIFEST_FILE
    try:
        manifest_bytes = manifest_path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read {manifest_path}: {exc}") from exc
    record = sign_manifest_bytes(manifest_bytes, load_private_key(private_key_path))
    path = root / SIGNATURE_FILE
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def _read_signature(root: Path) -> dict[str, Any]:
    path = root / SIGNATURE_FILE
    if not path.is_file():
        raise BundleError(f"bundle {root} is not signed (no {SIGNATURE_FILE}) and trusted_keys are configured")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(record, dict) or any(k not in record for k in _FIELDS):
        raise BundleError(f"{path} must be a JSON object with fields {list(_FIELDS)}")
    if record["format"] != SIGNATURE_FORMAT or record["algorithm"] != ALGORITHM:
        raise BundleError(
            f"{path}: format {record['format']!r} / algorithm {record['algorithm']!r} not supported "
            f"(expected {SIGNATURE_FORMAT} / {ALGORITHM!r})"
        )
    if record["signed_file"] != MANIFEST_FILE:
        raise BundleError(f"{path} signs {record['signed_file']!r}, expected {MANIFEST_FILE!r}")
    return record


def verify_manifest_signature(
    bundle_dir: str | os.PathLike[str], manifest_bytes: bytes, trusted_keys: Sequence[TrustedKey]
) -> TrustedKey:
    """Check `signature.json` against the exact manifest bytes the caller loaded; returns the key that signed.

    Raises:
        BundleError: no signature, a malformed one, one by a key not in `trusted_keys`, or one that does not
            verify (the manifest changed after signing), each with a one-line reason.
    """
    root = Path(bundle_dir)
    if not trusted_keys:
        raise ValueError("verify_manifest_signature needs at least one trusted key")
    record = _read_signature(root)
    by_id = {k.key_id: k for k in trusted_keys}
    signer = by_id.get(str(record["key_id"]))
    if signer is None:
        raise BundleError(
            f"bundle {root} is signed by key {record['key_id']!r}, which is not a trusted key "
            f"(trusted: {sorted(by_id)})"
        )
    try:
        signature = base64.b64decode(str(record["signature"]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(f"{root / SIGNATURE_FILE}: signature is not base64: {exc}") from exc
    try:
        signer.public_key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise BundleError(
            f"bundle {root}: the signature by key {signer.key_id!r} does not match {MANIFEST_FILE} — the manifest "
            "was changed after signing (or the signature is corrupt)"
        ) from None
    return signer
