"""`OnnxPolicy`: run an exported bundle with numpy + onnxruntime only (never torch).

This is the robot-side loader: it refuses a bundle whose model file does
not hash to the manifest's sha256 (or to a pinned `expected_sha256`), whose manifest is not signed by one of
the `trusted_keys` (when any are given), that keeps weights in external files, that samples at
inference time, or whose input/output signature or embedded spec disagree with the manifest.
Importing this module must not import torch (the robot side starts fast and small).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from robot_rl.core.specs import PolicySpec
from robot_rl.export.errors import BundleError
from robot_rl.export.json_diff import format_diff, json_diff
from robot_rl.export.manifest import (
    BATCH_DIM,
    MANIFEST_FILE,
    META_SPEC_KEY,
    Manifest,
    parse_manifest,
    read_manifest_bytes,
    sha256_bytes,
)
from robot_rl.export.onnx_scan import scan_onnx

_FLOAT_TENSOR = "tensor(float)"
_F32 = np.dtype(np.float32)


def create_session(
    model_bytes: bytes, *, intra_op_num_threads: int = 1, inter_op_num_threads: int = 1
) -> ort.InferenceSession:
    """onnxruntime CPU session with the settings the robot runtime uses (export parity uses them too).

    The session is built from the bytes that were hashed, never from the path, so the file
    cannot be swapped between the hash check and the load.
    """
    if intra_op_num_threads < 1 or inter_op_num_threads < 1:
        raise ValueError(f"thread counts must be >= 1, got intra={intra_op_num_threads} inter={inter_op_num_threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_num_threads
    options.inter_op_num_threads = inter_op_num_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads burn a core between control ticks; a small MLP gains nothing from them.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only; warnings would flood a robot log at every load
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def _shape_matches(actual: Sequence[Any], expected: Sequence[str | int]) -> bool:
    if len(actual) != len(expected):
        return False
    for a, e in zip(actual, expected, strict=True):
        if e == BATCH_DIM:
            if isinstance(a, int) and not isinstance(a, bool):  # a fixed batch size would reject batch 1 / B
                return False
        elif a != e:
            return False
    return True


def signature_problem(
    session: ort.InferenceSession,
    input_name: str,
    input_shape: Sequence[str | int],
    output_name: str,
    output_shape: Sequence[str | int],
) -> str | None:
    """Describe how the session's single input/output differ from the expected names/shapes, or None."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        return (
            f"model must have exactly one input and one output, has inputs {[i.name for i in inputs]} "
            f"and outputs {[o.name for o in outputs]}"
        )
    for kind, arg, name, shape in (
        ("input", inputs[0], input_name, input_shape),
        ("output", outputs[0], output_name, output_shape),
    ):
        if arg.name != name:
            return f"model {kind} is named {arg.name!r}, expected {name!r}"
        if arg.type != _FLOAT_TENSOR:
            return f"model {kind} {arg.name!r} has type {arg.type}, expected {_FLOAT_TENSOR}"
        if not _shape_matches(arg.shape, shape):
            return f"model {kind} {arg.name!r} has shape {arg.shape}, expected {list(shape)} ({BATCH_DIM!r} = dynamic)"
    return None


def _check_embedded_spec(session: ort.InferenceSession, manifest: Manifest) -> None:
    # The ONNX file is covered by the hash, the manifest is not: the spec embedded in the model
    # is the one the export was checked with, so an edited manifest spec is caught here.
    meta = session.get_modelmeta().custom_metadata_map
    if META_SPEC_KEY not in meta:
        raise BundleError(f"model carries no {META_SPEC_KEY!r} metadata; it was not exported by robot_rl.export")
    try:
        embedded = PolicySpec.from_json(json.loads(meta[META_SPEC_KEY]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"model metadata {META_SPEC_KEY!r} is not a valid PolicySpec: {exc!r}") from exc
    if embedded != manifest.policy_spec:
        diff = json_diff(manifest.policy_spec.to_json(), embedded.to_json(), "policy_spec", names=("manifest", "model"))
        raise BundleError(
            "manifest policy_spec does not match the spec embedded in the model file (manifest.json was edited or "
            "belongs to another export):\n" + format_diff(diff or ["policy_spec: differs (no field-level difference)"])
        )


class OnnxPolicy:
    """A verified policy bundle run by onnxruntime: raw observation in, physical action out.

    Implements the `robot_rl.core.types.Policy` protocol. Not thread-safe: `act` reuses
    preallocated input/output buffers, so use one instance per thread.
    """

    spec: PolicySpec
    """The observation/action spec of the bundle (from the verified manifest)."""
    manifest: Manifest
    """The bundle's validated manifest."""

    signer_key_id: str | None
    """Key id of the trusted key whose signature verified (None: loaded without `trusted_keys`)."""

    def __init__(
        self,
        session: ort.InferenceSession,
        manifest: Manifest,
        bundle_dir: Path,
        *,
        signer_key_id: str | None = None,
    ) -> None:
        """Wrap an already verified session; use `OnnxPolicy.load` to open a bundle."""
        self.spec = manifest.policy_spec
        self.manifest = manifest
        self.bundle_dir = bundle_dir
        self.signer_key_id = signer_key_id
        self.session = session
        self._obs_dim = self.spec.observation.dim
        self._act_dim = self.spec.action.dim
        self._input_name = manifest.input_name
        self._output_name = manifest.output_name
        # Preallocated batch-1 buffers bound once, so act() allocates only the returned copy. Input
        # and output are views of one array so that one sum checks both for NaN/Inf: each numpy call
        # after onnxruntime has run costs about a µs of cold cache, so act() makes as few as it can.
        self._io = np.zeros(self._obs_dim + self._act_dim, dtype=np.float32)
        self._obs_buf = self._io[: self._obs_dim].reshape(1, self._obs_dim)
        self._act_row = self._io[self._obs_dim :]
        self._obs_shapes = ((self._obs_dim,), (1, self._obs_dim))
        self._binding = session.io_binding()
        self._binding.bind_cpu_input(self._input_name, self._obs_buf)
        self._binding.bind_output(
            self._output_name, "cpu", 0, np.float32, [1, self._act_dim], self._act_row.ctypes.data
        )

    @classmethod
    def load(
        cls,
        bundle_dir: str | os.PathLike[str],
        *,
        intra_op_num_threads: int = 1,
        expected_sha256: str | None = None,
        trusted_keys: Sequence[str | os.PathLike[str]] | None = None,
    ) -> OnnxPolicy:
        """Open and verify a bundle directory (manifest.json + policy.onnx).

        Args:
            bundle_dir: directory written by `export_policy`.
            intra_op_num_threads: onnxruntime intra-op threads (1 suits a batch-1 control loop).
            expected_sha256: optionally pin the model hash (e.g. from launch parameters).
            trusted_keys: public-key PEM files (`robot-rl sign --generate-key`); when given, the bundle must
                carry a `signature.json` by one of them over its exact manifest.json. None/empty: not required.

        Raises:
            BundleError: missing/invalid manifest, sha256 mismatch, missing/untrusted/invalid signature,
                external data, sampling ops, or an input/output signature or spec that disagrees with the manifest.
        """
        if intra_op_num_threads < 1:
            raise ValueError(f"intra_op_num_threads must be >= 1, got {intra_op_num_threads}")
        root = Path(bundle_dir)
        if not root.is_dir():
            raise BundleError(f"policy bundle directory {root} does not exist")
        # One read: the bytes whose signature is checked are the bytes that are parsed (no swap in between).
        manifest_bytes = read_manifest_bytes(root)
        signer_key_id = None
        if trusted_keys:
            from robot_rl.export.signing import load_trusted_keys, verify_manifest_signature  # only when asked

            signer = verify_manifest_signature(root, manifest_bytes, load_trusted_keys(list(trusted_keys)))
            signer_key_id = signer.key_id
        manifest = parse_manifest(manifest_bytes, root / MANIFEST_FILE)
        if manifest.policy_spec.chunk_size != 1:
            raise BundleError(
                f"bundle has chunk_size {manifest.policy_spec.chunk_size}; OnnxPolicy runs chunk_size 1 only"
            )
        model_path = root / manifest.onnx_file
        if not model_path.is_file():
            raise BundleError(f"model file {model_path} named by the manifest is missing")
        try:
            model_bytes = model_path.read_bytes()
        except OSError as exc:
            raise BundleError(f"cannot read {model_path}: {exc}") from exc
        actual = sha256_bytes(model_bytes)
        if actual != manifest.onnx_sha256:
            raise BundleError(
                f"sha256 mismatch: manifest says {manifest.onnx_sha256}, file is {actual} — "
                "the model file was modified or corrupted"
            )
        if expected_sha256 is not None and expected_sha256.strip().lower() != actual:
            raise BundleError(
                f"sha256 mismatch: expected {expected_sha256.strip().lower()}, bundle model is {actual} — "
                "a different model than the one pinned"
            )
        try:
            scan = scan_onnx(model_bytes)
        except ValueError as exc:
            raise BundleError(f"{model_path} is not a valid ONNX model: {exc}") from exc
        if scan.external_tensors:
            listed = ", ".join(f"{name!r} in {loc!r}" for name, loc in scan.external_tensors[:5])
            raise BundleError(
                f"{model_path} keeps {len(scan.external_tensors)} tensor(s) in external data ({listed}); "
                "only single-file ONNX models are accepted because external files are not covered by "
                "the sha256"
            )
        if scan.sampling_ops:
            raise BundleError(
                f"{model_path} uses sampling operators {sorted(scan.sampling_ops)}; deployable graphs "
                "must be deterministic"
            )
        try:
            session = create_session(model_bytes, intra_op_num_threads=intra_op_num_threads)
        except Exception as exc:  # onnxruntime raises its own Exception subclasses for malformed graphs
            raise BundleError(f"onnxruntime refused {model_path}: {exc}") from exc
        problem = signature_problem(
            session, manifest.input_name, manifest.input_shape, manifest.output_name, manifest.output_shape
        )
        if problem is not None:
            raise BundleError(f"{model_path} does not match its manifest/spec: {problem}")
        _check_embedded_spec(session, manifest)
        return cls(session, manifest, root, signer_key_id=signer_key_id)

    @property
    def obs_dim(self) -> int:
        """Length of the flat observation vector."""
        return self._obs_dim

    @property
    def act_dim(self) -> int:
        """Number of action dimensions."""
        return self._act_dim

    def reset(self) -> None:
        """Clear episode state; a chunk-size-1 feed-forward policy has none, so this does nothing."""

    def _describe_non_finite(self, flat: npt.NDArray[np.float32]) -> str:
        bad = np.flatnonzero(~np.isfinite(flat))
        keys: list[str] = []
        start = 0
        for key, shape in zip(self.spec.observation.keys, self.spec.observation.shapes, strict=True):
            size = int(np.prod(shape))
            if np.any((bad >= start) & (bad < start + size)):
                keys.append(key)
            start += size
        return f"flat indices {bad[:10].tolist()} (entries {keys}) values {flat[bad[:10]].tolist()}"

    def act(self, obs: Mapping[str, Any] | npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Action `[act_dim]` float32 in physical units for one observation.

        `obs` is a mapping of named arrays (flattened in spec order) or a flat array of shape
        `[obs_dim]` or `[1, obs_dim]`.

        Raises:
            ValueError: wrong keys/shape/dtype, or a non-finite value (after float32 conversion).
            RuntimeError: the model produced a non-finite action.
        """
        if type(obs) is np.ndarray and obs.dtype is _F32 and obs.shape in self._obs_shapes:
            self._obs_buf[...] = obs  # fast path: the usual float32 [obs_dim] array
        elif isinstance(obs, Mapping):
            self._obs_buf[...] = self.spec.observation.flatten(obs)
        else:
            arr = np.asarray(obs)
            if arr.shape not in self._obs_shapes:
                raise ValueError(
                    f"observation has shape {arr.shape}, expected ({self._obs_dim},) or (1, {self._obs_dim})"
                )
            if arr.dtype.kind not in "fiu":
                raise ValueError(f"observation has dtype {arr.dtype}, expected a real number type")
            # float64 values beyond float32 range become inf here and are caught below.
            with np.errstate(over="ignore", invalid="ignore"):
                self._obs_buf[...] = arr
        try:
            self.session.run_with_iobinding(self._binding)
        except Exception as exc:  # onnxruntime's exception types do not derive from RuntimeError
            raise RuntimeError(f"onnxruntime inference failed: {exc}") from exc
        # A feed-forward graph keeps no state, so checking the input after the run is as safe as
        # before it, and one check covers input and output.
        # Summed as Python floats (float64): float32 values cannot overflow it; NaN/Inf propagate.
        if not math.isfinite(sum(self._io.tolist())):
            self._raise_non_finite()
        action: npt.NDArray[np.float32] = self._act_row.copy()  # the buffer is reused on the next call
        return action

    def _raise_non_finite(self) -> None:
        obs, action = self._obs_buf[0], self._act_row
        if not np.isfinite(obs).all():
            raise ValueError(f"observation is not finite: {self._describe_non_finite(obs)}")
        raise RuntimeError(f"policy produced a non-finite action {action.tolist()} for a finite observation")

    def act_batch(self, obs: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Actions `[B, act_dim]` float32 in physical units for raw observations `[B, obs_dim]`.

        Raises:
            ValueError: wrong shape/dtype or a non-finite value.
            RuntimeError: the model produced a non-finite action.
        """
        arr = np.asarray(obs)
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] != self._obs_dim:
            raise ValueError(f"observation batch has shape {arr.shape}, expected (B >= 1, {self._obs_dim})")
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"observation batch has dtype {arr.dtype}, expected a real number type")
        batch = np.ascontiguousarray(arr, dtype=np.float32)
        finite = np.isfinite(batch)
        if not finite.all():
            rows = np.flatnonzero(~finite.all(axis=1))
            raise ValueError(f"observation batch has non-finite values in rows {rows[:10].tolist()}")
        try:
            actions: npt.NDArray[np.float32] = self.session.run([self._output_name], {self._input_name: batch})[0]
        except Exception as exc:  # onnxruntime's exception types do not derive from RuntimeError
            raise RuntimeError(f"onnxruntime inference failed: {exc}") from exc
        if not np.isfinite(actions).all():
            rows = np.flatnonzero(~np.isfinite(actions).all(axis=1))
            raise RuntimeError(f"policy produced non-finite actions in rows {rows[:10].tolist()}")
        return actions

    def check_action_names(self, names: Sequence[str]) -> None:
        """Check that the bundle's action names equal `names` (same set, same order).

        Raises:
            BundleError: the bundle has no names, or names are missing, extra or in another order.
        """
        expected = tuple(names)
        actual = self.spec.action.names
        if not actual:
            raise BundleError(f"bundle has no action names; cannot check them against {list(expected)}")
        if actual == expected:
            return
        missing = [n for n in expected if n not in actual]
        extra = [n for n in actual if n not in expected]
        if missing or extra:
            raise BundleError(
                f"action names differ: missing from bundle {missing}, extra in bundle {extra} "
                f"(bundle {list(actual)}, expected {list(expected)})"
            )
        raise BundleError(f"action names are in a different order: bundle {list(actual)}, expected {list(expected)}")

    def __repr__(self) -> str:
        return (
            f"OnnxPolicy(bundle_dir={str(self.bundle_dir)!r}, obs_dim={self._obs_dim}, "
            f"act_dim={self._act_dim}, sha256={self.manifest.onnx_sha256[:12]}…)"
        )
