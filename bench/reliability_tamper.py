"""The tamper matrix of bench/reliability.py: each tampered bundle is configured by a policy node.

Each case copies a freshly exported bundle, tampers with it the way an attacker (or a broken copy) would, and
calls the node's configure transition in-process; the outcome is "refused" or "accepted" with the node's
one-line reason (its last error, or its model status on /diagnostics when it accepted). `expected` says what
the issue requires: refused, except a re-hashed bundle (changed weights or a swapped model, the manifest's hash
updated to match) on a node with neither a pin nor keys, which nothing can tell apart from a legitimate bundle (the
node accepts it with WARN "unpinned" on /diagnostics; `robot-rl deploy` pins the hash it verified by default).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

# case -> (what is done to the bundle, how the node is configured, expected outcome)
TAMPER_CASES = (
    "weights_changed_unpinned",
    "weights_changed_rehashed_unpinned",
    "weights_changed_rehashed_pinned",
    "weights_changed_rehashed_signed",
    "manifest_edited",
    "manifest_edited_signed",
    "onnx_swapped_rehashed_unpinned",
    "onnx_swapped_rehashed_pinned",
    "external_data",
    "truncated_onnx",
    "missing_signature_with_keys",
)


def _rehash(bundle: Path) -> None:
    """Make the manifest agree with the (tampered) ONNX file again, as a careful attacker would."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["onnx_sha256"] = hashlib.sha256((bundle / "policy.onnx").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _change_weights(bundle: Path) -> None:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(bundle / "policy.onnx"))
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size > 4:  # the first weight matrix: a small, plausible edit
            init.CopyFrom(numpy_helper.from_array((arr + 0.01).astype(np.float32), init.name))
            break
    onnx.save(model, str(bundle / "policy.onnx"))


def _external_data(bundle: Path) -> None:
    import onnx

    model = onnx.load(str(bundle / "policy.onnx"))
    onnx.save_model(
        model,
        str(bundle / "policy.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="policy.onnx.data",
        size_threshold=0,
    )
    _rehash(bundle)


def _edit_manifest(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["policy_spec"]["control_hz"] = float(manifest["policy_spec"]["control_hz"]) * 4  # a faster loop
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _configure(bundle: Path, params: dict[str, Any]) -> tuple[str, str]:
    """Configure a policy node on `bundle`; ("refused"|"accepted", one-line reason)."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from ros_nodes.policy_node import PolicyNode

    sys.path.insert(0, str(REPO_ROOT / "tests" / "ros"))
    from rosutil import ros_context

    with ros_context() as (ctx, executor):
        all_params = {"bundle_dir": str(bundle), **params}
        node = PolicyNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in all_params.items()])
        executor.add_node(node)
        ok = node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        if ok:
            dep = node._dep
            reason = dep.trust_status()[1] if dep is not None else "configured"
        else:
            reason = str(node._last_error)
    first = reason.strip().splitlines()[0] if reason.strip() else ""
    return ("accepted" if ok else "refused"), first


def run_tamper_matrix(
    work: Path, cases: list[str], make_bundle: Callable[[Path, str, int], Path]
) -> list[dict[str, Any]]:
    """Every case in `cases`; returns rows with case, outcome, expected, reason, lines (reason's line count)."""
    from robot_rl.export.signing import generate_key, sign_bundle

    base = make_bundle(work / "tamper_base", "velocity", 0)
    other = make_bundle(work / "tamper_other", "velocity", 1)  # another valid model for the same robot
    original_sha = json.loads((base / "manifest.json").read_text())["onnx_sha256"]
    key, pub, _ = generate_key(work / "tamper_key.pem")
    rows = []
    for case in cases:
        bundle = work / f"tamper_{case}"
        shutil.copytree(base, bundle)
        params: dict[str, Any] = {}
        expected = "refused"
        if case.startswith("weights_changed"):
            if case.endswith("signed"):
                sign_bundle(bundle, key)  # signed before the tampering, as the producer shipped it
                params["trusted_keys"] = [str(pub)]
            _change_weights(bundle)
            if "rehashed" in case:
                _rehash(bundle)
                if case.endswith("unpinned"):
                    expected = "accepted"  # a consistent bundle: only a pin or a key can tell it from the original
            if case.endswith("pinned") and not case.endswith("unpinned"):
                params["expected_sha256"] = original_sha
        elif case.startswith("manifest_edited"):
            if case.endswith("signed"):
                sign_bundle(bundle, key)
                params["trusted_keys"] = [str(pub)]
            _edit_manifest(bundle)
        elif case.startswith("onnx_swapped"):
            shutil.copyfile(other / "policy.onnx", bundle / "policy.onnx")
            _rehash(bundle)
            if case.endswith("unpinned"):
                expected = "accepted"  # indistinguishable without a pin or a key: accepted, WARN "unpinned"
            else:
                params["expected_sha256"] = original_sha
        elif case == "external_data":
            _external_data(bundle)
        elif case == "truncated_onnx":
            data = (bundle / "policy.onnx").read_bytes()
            (bundle / "policy.onnx").write_bytes(data[: len(data) // 2])
        elif case == "missing_signature_with_keys":
            params["trusted_keys"] = [str(pub)]
        else:
            raise ValueError(f"unknown tamper case {case!r}; known: {TAMPER_CASES}")
        outcome, reason = _configure(bundle, params)
        rows.append({"case": case, "outcome": outcome, "expected": expected, "reason": reason})
    return rows
