"""`OnnxPolicy`: run an exported bundle with numpy + onnxruntime only (never torch).

This is the robot-side loader: it refuses a bundle whose model file does
not hash to the manifest's sha256 (or to a pinned `expected_sha256`), whose manifest is not signed by one of
the `trusted_keys` (when any are given), that keeps weights in external files, that samples at
inference time, or whose input/output signature or embedded spec disagree with the manifest.
Importing this module must not import torch (the robot side starts fast and small).

Chunked, history and sampler bundles (docs/export.md, "Chunked sampler bundles") run through the same class:
`plan(obs_history, noise=None) -> [H, A]` is one stateless query (noise drawn from the policy's seeded generator
when not given), and `act(obs)` keeps the T_o observation history and a receding-horizon chunk queue so that such
a bundle serves the step-by-step `Policy` protocol unchanged.

A bundle on a base bundle (`manifest.base`: a residual fine-tuned on a bundle, chunked or sampler base) keeps the
base bundle in a sub-directory pinned by its sha256: `load` verifies both and refuses a base whose hash differs;
`act(obs)` runs the base (its own history, chunk queue and seeded noise), maps its action to the normalized,
clipped proposal the learner saw, and runs this bundle's graph on `[obs, proposal]`. To a caller it is a plain
bundle whose `reset()` also starts the base's episode. A noise actor on a sampler base bundle (`feeds: noise`, DSRL)
is the base's chunked policy without a noise input: each plan runs this graph on the observation history and the
base's sampler on the noise it chose.

A bundle with a Lyapunov critic (`manifest.lyapunov`, a LAC run's `lyapunov.onnx`) has it verified at load
(`robot_rl.export.lyapunov_runtime`) and evaluated by `lyapunov_value(obs, action)`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from robot_rl.core.specs import PolicySpec
from robot_rl.export.chunk_state import ChunkQueue, ObservationHistory
from robot_rl.export.errors import BundleError
from robot_rl.export.json_diff import format_diff, json_diff
from robot_rl.export.manifest import (
    BATCH_DIM,
    MANIFEST_FILE,
    META_BASE_KEY,
    META_SAMPLER_KEY,
    META_SPEC_KEY,
    Manifest,
    SamplerInfo,
    parse_manifest,
    read_manifest_bytes,
    sha256_bytes,
)
from robot_rl.export.onnx_scan import scan_onnx

if TYPE_CHECKING:
    from robot_rl.export.lyapunov_runtime import OnnxLyapunov

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


def read_pinned_model(path: Path, expected_sha256: str, *, what: str, file_field: str, sha_field: str) -> bytes:
    """The bytes of the ONNX file `path` that a manifest names, after checking them against the manifest's sha256.

    `what` names the file in messages ("model file"), `file_field` and `sha_field` the manifest fields that name
    and pin it. Raises BundleError when the file is missing, unreadable or differs from its hash.
    """
    if not path.is_file():
        raise BundleError(f"{what} {path} named by manifest {file_field} is missing")
    try:
        model_bytes = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read {path} (manifest {file_field}): {exc}") from exc
    actual = sha256_bytes(model_bytes)
    if actual != expected_sha256:
        raise BundleError(
            f"{sha_field} mismatch: manifest says {expected_sha256}, file is {actual} — "
            f"the {what} was modified or corrupted"
        )
    return model_bytes


def open_checked_session(model_bytes: bytes, label: str, *, intra_op_num_threads: int = 1) -> ort.InferenceSession:
    """A session over a verified file's bytes, once they are known to be one deterministic, self-contained graph.

    `label` names the file in messages. Raises BundleError for an unparsable model, tensors kept in external
    data (the sha256 would not cover them), sampling operators, or a graph onnxruntime refuses.
    """
    try:
        scan = scan_onnx(model_bytes)
    except ValueError as exc:
        raise BundleError(f"{label} is not a valid ONNX model: {exc}") from exc
    if scan.external_tensors:
        listed = ", ".join(f"{name!r} in {loc!r}" for name, loc in scan.external_tensors[:5])
        raise BundleError(
            f"{label} keeps {len(scan.external_tensors)} tensor(s) in external data ({listed}); only single-file "
            "ONNX models are accepted because external files are not covered by the sha256"
        )
    if scan.sampling_ops:
        raise BundleError(
            f"{label} uses sampling operators {sorted(scan.sampling_ops)}; deployable graphs must be deterministic"
        )
    try:
        return create_session(model_bytes, intra_op_num_threads=intra_op_num_threads)
    except Exception as exc:  # onnxruntime raises its own Exception subclasses for malformed graphs
        raise BundleError(f"onnxruntime refused {label}: {exc}") from exc


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
    *,
    noise_name: str | None = None,
    noise_shape: Sequence[str | int] | None = None,
    fields: Mapping[str, str] | None = None,
) -> str | None:
    """Describe how the session's inputs/output differ from the expected names/shapes, or None.

    The graph must have exactly the observation input (and the noise input, when `noise_name` is given, second)
    and one output. `fields` maps "input"/"noise"/"output" to the manifest field a shape came from, so a mismatch
    names it on one line (e.g. `manifest output_shape: policy_spec.chunk_size 8, action dim 2`).
    """
    expected: list[tuple[str, str, Sequence[str | int]]] = [("input", input_name, input_shape)]
    if noise_name is not None:
        expected.append(("noise", noise_name, noise_shape if noise_shape is not None else ()))
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != len(expected) or len(outputs) != 1:
        names = [name for _, name, _ in expected]
        wanted = "one input" if len(names) == 1 else f"{len(names)} inputs ({', '.join(map(repr, names))})"
        return (
            f"model must have exactly {wanted} and one output, has inputs {[i.name for i in inputs]} "
            f"and outputs {[o.name for o in outputs]}"
        )
    args = [(kind, arg, name, shape) for (kind, name, shape), arg in zip(expected, inputs, strict=True)]
    args.append(("output", outputs[0], output_name, output_shape))
    for kind, arg, name, shape in args:
        label = "input" if kind == "noise" else kind
        if arg.name != name:
            return f"model {label} is named {arg.name!r}, expected {name!r}"
        if arg.type != _FLOAT_TENSOR:
            return f"model {label} {arg.name!r} has type {arg.type}, expected {_FLOAT_TENSOR}"
        if not _shape_matches(arg.shape, shape):
            where = f" ({fields[kind]})" if fields and kind in fields else ""
            return (
                f"model {label} {arg.name!r} has shape {arg.shape}, expected {list(shape)} "
                f"({BATCH_DIM!r} = dynamic){where}"
            )
    return None


def manifest_signature_problem(session: ort.InferenceSession, manifest: Manifest) -> str | None:
    """`signature_problem` for everything a manifest declares: observation (history), noise and output shapes."""
    spec = manifest.policy_spec
    fields = {
        "input": f"manifest input_shape: policy_spec.obs_history {spec.obs_history} x observation dim "
        f"{spec.observation.dim}",
        "output": f"manifest output_shape: policy_spec.chunk_size {spec.chunk_size}, action dim {spec.action.dim}",
        "noise": "manifest noise_shape",
    }
    return signature_problem(
        session,
        manifest.input_name,
        manifest.input_shape,
        manifest.output_name,
        manifest.output_shape,
        noise_name=manifest.noise_name,
        noise_shape=manifest.noise_shape,
        fields=fields,
    )


_CHUNK_FIELDS = ("chunk_size", "execution_horizon", "obs_history")
_EDITED = "(manifest.json was edited or belongs to another export)"


def _embedded_record(session: ort.InferenceSession, key: str) -> Mapping[str, Any] | None:
    """The JSON object the (hashed) model stores under metadata `key`, or None; BundleError when it is malformed."""
    meta = session.get_modelmeta().custom_metadata_map
    if key not in meta:
        return None
    try:
        record = json.loads(meta[key])
    except ValueError as exc:
        raise BundleError(f"model metadata {key!r} is not valid JSON: {exc}") from exc
    if not isinstance(record, Mapping):
        raise BundleError(f"model metadata {key!r} is not a JSON object")
    return record


def _check_sampler_record(session: ort.InferenceSession, manifest: Manifest) -> None:
    """Refuse a manifest whose noise/sampler fields differ from the record embedded in the (hashed) model."""
    ours = manifest.sampler_record()
    theirs = _embedded_record(session, META_SAMPLER_KEY)
    if theirs is None:
        if ours is not None:
            raise BundleError(
                f"manifest declares sampler fields {sorted(k for k, v in ours.items() if v is not None)} but the "
                f"model carries no {META_SAMPLER_KEY!r} record {_EDITED}"
            )
        return
    if ours is None:
        raise BundleError(f"manifest has no noise_name/noise_shape/sampler fields but the model is a sampler {_EDITED}")
    flat_ours, flat_theirs = _flatten_record(ours), _flatten_record(theirs)
    for key in sorted(set(flat_ours) | set(flat_theirs)):
        if flat_ours.get(key) != flat_theirs.get(key):
            raise BundleError(
                f"manifest {key} {flat_ours.get(key)!r} does not match the model's {flat_theirs.get(key)!r} {_EDITED}"
            )


def _check_base_record(session: ort.InferenceSession, manifest: Manifest) -> None:
    """Refuse a manifest whose base record (directory, the base's sha256) differs from the one in the hashed model."""
    ours = None if manifest.base is None else manifest.base.to_json()
    theirs = _embedded_record(session, META_BASE_KEY)
    if theirs is None:
        if ours is not None:
            raise BundleError(
                f"manifest declares a base bundle but the model carries no {META_BASE_KEY!r} record {_EDITED}"
            )
        return
    if ours is None:
        raise BundleError(f"manifest has no base field but the model runs on a base bundle {_EDITED}")
    if ours != dict(theirs):
        diff = json_diff(ours, dict(theirs), "base", names=("manifest", "model"))
        raise BundleError("manifest base does not match the model's record " + _EDITED + ":\n" + format_diff(diff))


def _load_base(root: Path, manifest: Manifest, intra_op_num_threads: int, seed: int) -> OnnxPolicy | None:
    """The verified base bundle of a bundle on a base (None without one); refuses a base whose sha256 differs."""
    if manifest.base is None:
        return None
    base_dir = root / manifest.base.dir
    try:
        base = OnnxPolicy.load(
            base_dir, intra_op_num_threads=intra_op_num_threads, expected_sha256=manifest.base.onnx_sha256, seed=seed
        )
    except BundleError as exc:
        raise BundleError(f"the base bundle {base_dir} of {root} was refused: {exc}") from exc
    if base.spec.action != manifest.policy_spec.action:
        raise BundleError(
            f"the base bundle {base_dir} acts in {base.spec.action}, this bundle in {manifest.policy_spec.action}"
        )
    if base.obs_dim != manifest.policy_spec.observation.dim:
        raise BundleError(
            f"the base bundle {base_dir} takes {base.obs_dim} observations, this bundle "
            f"{manifest.policy_spec.observation.dim}"
        )
    if manifest.base.feeds == "noise":
        spec, size = manifest.policy_spec, manifest.output_shape[-1]
        if base.noise_shape is None or int(np.prod(base.noise_shape)) != size:
            raise BundleError(f"the base bundle {base_dir} takes noise {base.noise_shape}, this bundle chooses {size}")
        if (base.spec.chunk_size, base.spec.obs_history) != (spec.chunk_size, spec.obs_history):
            raise BundleError(f"the base bundle {base_dir} plans other chunks or histories than this bundle declares")
    return base


def _flatten_record(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


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
    for name in _CHUNK_FIELDS:  # one line naming the chunk field before the general diff
        ours, theirs = getattr(manifest.policy_spec, name), getattr(embedded, name)
        if ours != theirs:
            raise BundleError(f"manifest policy_spec.{name} {ours} does not match the model's {theirs} {_EDITED}")
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

    A chunked / history / sampler bundle (`chunk_size` H > 1, `obs_history` T_o > 1 or a noise input) also
    implements `plan(obs_history [T_o*O], noise=None) -> [H, A]`, and its `act(obs [O])` keeps the history (the
    episode's first observation repeated) and executes `execution_horizon` H_a actions of each chunk before planning
    the next (receding horizon). Noise not passed in is drawn from a `numpy.random.Generator` seeded at load
    (`seed`): the same bundle, seed and observations give the same actions. `reset()` clears the history and the
    queue but does not re-seed, so the episodes of one run draw different noise and the run as a whole is
    reproducible; call `reseed(seed)` for per-episode reproducibility.
    """

    spec: PolicySpec
    """The observation/action spec of the bundle (from the verified manifest)."""
    manifest: Manifest
    """The bundle's validated manifest."""

    signer_key_id: str | None
    """Key id of the trusted key whose signature verified (None: loaded without `trusted_keys`)."""
    replanned: bool
    """Whether the last `act` call planned a new chunk (always True for a plain bundle): chunk boundaries for
    diagnostics and recordings."""

    def __init__(
        self,
        session: ort.InferenceSession,
        manifest: Manifest,
        bundle_dir: Path,
        *,
        signer_key_id: str | None = None,
        seed: int = 0,
        execution_horizon: int = 0,
        base: OnnxPolicy | None = None,
        lyapunov: OnnxLyapunov | None = None,
    ) -> None:
        """Wrap an already verified session; use `OnnxPolicy.load` to open a bundle."""
        self.lyapunov = lyapunov
        """The bundle's verified Lyapunov critic (`manifest.lyapunov`), or None."""
        self.spec = manifest.policy_spec
        self.manifest = manifest
        self.bundle_dir = bundle_dir
        self.signer_key_id = signer_key_id
        self.session = session
        self._obs_dim = self.spec.observation.dim
        self._act_dim = self.spec.action.dim
        self._input_name = manifest.input_name
        self._output_name = manifest.output_name
        self._noise_shape: tuple[int, ...] | None = (
            None if manifest.noise_shape is None else tuple(int(d) for d in manifest.noise_shape[1:])
        )
        self._steers = manifest.base is not None and manifest.base.feeds == "noise"
        """This graph chooses a base bundle's noise (its sampler plans): always planned, never the plain path."""
        self._plain = (
            self.spec.chunk_size == 1 and self.spec.obs_history == 1 and self._noise_shape is None and not self._steers
        )
        horizon = execution_horizon or self.spec.executed_per_chunk
        if not 1 <= horizon <= self.spec.chunk_size:
            raise ValueError(f"execution_horizon must be in [1, chunk_size={self.spec.chunk_size}], got {horizon}")
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self.replanned = True
        # Preallocated batch-1 buffers bound once, so act() allocates only the returned copy. Input
        # and output are views of one array so that one sum checks both for NaN/Inf: each numpy call
        # after onnxruntime has run costs about a µs of cold cache, so act() makes as few as it can.
        self._io = np.zeros(self._obs_dim + self._act_dim, dtype=np.float32)
        self._obs_buf = self._io[: self._obs_dim].reshape(1, self._obs_dim)
        self._act_row = self._io[self._obs_dim :]
        self._obs_shapes = ((self._obs_dim,), (1, self._obs_dim))
        self._binding = session.io_binding()
        self.base = base
        """The verified base bundle this one runs on (`manifest.base`), or None."""
        if base is not None and not self._steers:
            # the graph's input is [obs, proposal]: the observation is copied from the base's validated one
            self._head_in = np.zeros((1, self._obs_dim + self._act_dim), dtype=np.float32)
            self._binding.bind_cpu_input(self._input_name, self._head_in)
            self._binding.bind_output(
                self._output_name, "cpu", 0, np.float32, [1, self._act_dim], self._act_row.ctypes.data
            )
            return
        if self._plain:
            self._binding.bind_cpu_input(self._input_name, self._obs_buf)
            self._binding.bind_output(
                self._output_name, "cpu", 0, np.float32, [1, self._act_dim], self._act_row.ctypes.data
            )
            return
        # Chunked / history / sampler bundle: buffers for one plan, the history and the chunk queue.
        self._in_dim = self.spec.obs_history * self._obs_dim
        self._plan_obs = np.zeros((1, self._in_dim), dtype=np.float32)
        self._plan_noise = np.zeros((1, *(self._noise_shape or ())), dtype=np.float32)
        out_shape = [1, *(int(d) for d in manifest.output_shape[1:])]
        self._plan_out = np.zeros(out_shape, dtype=np.float32)
        self._history = ObservationHistory(self.spec.obs_history, self._obs_dim)
        self._queue = ChunkQueue(horizon, self._act_dim)
        self._binding.bind_cpu_input(self._input_name, self._plan_obs)
        if manifest.noise_name is not None:
            self._binding.bind_cpu_input(manifest.noise_name, self._plan_noise)
        self._binding.bind_output(self._output_name, "cpu", 0, np.float32, out_shape, self._plan_out.ctypes.data)

    @classmethod
    def load(
        cls,
        bundle_dir: str | os.PathLike[str],
        *,
        intra_op_num_threads: int = 1,
        expected_sha256: str | None = None,
        trusted_keys: Sequence[str | os.PathLike[str]] | None = None,
        seed: int = 0,
        execution_horizon: int = 0,
    ) -> OnnxPolicy:
        """Open and verify a bundle directory (manifest.json + policy.onnx).

        Args:
            bundle_dir: directory written by `export_policy`.
            intra_op_num_threads: onnxruntime intra-op threads (1 suits a batch-1 control loop).
            expected_sha256: optionally pin the model hash (e.g. from launch parameters).
            trusted_keys: public-key PEM files (`robot-rl sign --generate-key`); when given, the bundle must
                carry a `signature.json` by one of them over its exact manifest.json. None/empty: not required.
            seed: seed of the generator that draws a sampler bundle's noise when `plan`/`act` get none.
            execution_horizon: H_a, actions executed from each chunk before `act` plans again (0 = the spec's
                `execution_horizon`, itself 0 = the whole chunk).

        Raises:
            BundleError: missing/invalid manifest, sha256 mismatch, missing/untrusted/invalid signature,
                external data, sampling ops, or an input/output signature, spec or sampler record (noise shape,
                steps, chunk fields) that disagrees with the manifest; a declared Lyapunov critic that is missing,
                tampered, of the wrong signature or whose record the policy graph does not embed
                (`robot_rl.export.lyapunov_runtime`); each with a one-line reason naming the field.
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
        model_path = root / manifest.onnx_file
        model_bytes = read_pinned_model(
            model_path, manifest.onnx_sha256, what="model file", file_field="onnx_file", sha_field="sha256"
        )
        pinned = None if expected_sha256 is None else expected_sha256.strip().lower()
        if pinned is not None and pinned != manifest.onnx_sha256:
            raise BundleError(
                f"sha256 mismatch: expected {pinned}, bundle model is {manifest.onnx_sha256} — "
                "a different model than the one pinned"
            )
        session = open_checked_session(model_bytes, str(model_path), intra_op_num_threads=intra_op_num_threads)
        problem = manifest_signature_problem(session, manifest)
        if problem is not None:
            raise BundleError(f"{model_path} does not match its manifest/spec: {problem}")
        _check_embedded_spec(session, manifest)
        _check_sampler_record(session, manifest)
        _check_base_record(session, manifest)
        from robot_rl.export.lyapunov_runtime import load_critic  # here: it builds on this module's checks

        critic = load_critic(root, manifest, session)
        base = _load_base(root, manifest, intra_op_num_threads, seed)
        return cls(
            session,
            manifest,
            root,
            signer_key_id=signer_key_id,
            seed=seed,
            execution_horizon=execution_horizon,
            base=base,
            lyapunov=critic,
        )

    @property
    def has_lyapunov(self) -> bool:
        """Whether the bundle carries a verified Lyapunov critic (`lyapunov_value` works)."""
        return self.lyapunov is not None

    def lyapunov_value(self, obs: npt.ArrayLike, action: npt.ArrayLike) -> float:
        """The bundle's Lyapunov critic `L(obs, action)` for one raw observation `[O]` and one physical action `[A]`
        (what the node's `lyapunov` monitor link is fed).

        Raises:
            ValueError: the bundle carries no critic, or a wrong shape or non-finite input.
            RuntimeError: onnxruntime failed.
        """
        if self.lyapunov is None:
            raise ValueError(f"bundle {self.bundle_dir} carries no Lyapunov critic (manifest lyapunov is absent)")
        return self.lyapunov.value(obs, action)

    @property
    def obs_dim(self) -> int:
        """Length of the flat observation vector."""
        return self._obs_dim

    @property
    def act_dim(self) -> int:
        """Number of action dimensions."""
        return self._act_dim

    @property
    def chunk_size(self) -> int:
        """H: actions per `plan` (1 for a plain bundle)."""
        return self.spec.chunk_size

    @property
    def execution_horizon(self) -> int:
        """H_a: actions `act` executes from each chunk before planning again."""
        return 1 if self._plain else self._queue.horizon

    @property
    def obs_history(self) -> int:
        """T_o: observations one plan conditions on (`plan` takes `[T_o * obs_dim]`)."""
        return self.spec.obs_history

    @property
    def noise_shape(self) -> tuple[int, ...] | None:
        """Per-query shape of the noise input (usually `(H, A)`), or None when the bundle takes none."""
        return self._noise_shape

    @property
    def sampler(self) -> SamplerInfo | None:
        """The sampler unrolled in the graph (kind, K steps), or None."""
        return self.manifest.sampler

    def reset(self, first_obs: object = None) -> None:
        """Start an episode: forget the observation history and the queued actions (nothing for a plain bundle).

        The noise generator is not re-seeded (see the class docstring; `reseed`). `first_obs` is ignored: the
        history fills with the first observation `act` receives; it is accepted so `reset` can be an
        `on_reset(first_obs)` callback. A bundle on a base bundle resets the base.
        """
        if self.base is not None:
            self.base.reset()
        if self._plain:
            return
        self._history.clear()
        self._queue.clear()
        self.replanned = True

    def reseed(self, seed: int) -> None:
        """Restart the noise generator from `seed` (what `load(seed=...)` did)."""
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        if self.base is not None:
            self.base.reseed(seed)

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
        if self.base is not None and not self._steers:
            return self._act_on_base(obs)
        if not self._plain:
            return self._act_chunked(obs)
        if type(obs) is np.ndarray and obs.dtype is _F32 and obs.shape in self._obs_shapes:
            self._obs_buf[...] = obs  # fast path: the usual float32 [obs_dim] array
        else:
            self._fill_observation(obs)  # non-finite values are caught after the run, below
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

    def _run_bound(self) -> None:
        """Run the graph on the bound buffers; onnxruntime's errors as RuntimeError (the plain `act` inlines this:
        its per-call cost is what the control tick pays)."""
        try:
            self.session.run_with_iobinding(self._binding)
        except Exception as exc:  # onnxruntime's exception types do not derive from RuntimeError
            raise RuntimeError(f"onnxruntime inference failed: {exc}") from exc

    def _act_on_base(self, obs: Mapping[str, Any] | npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The base's step (it validates the observation), its proposal, then this graph on both."""
        assert self.base is not None
        base_action = self.base.act(obs)
        self.replanned = self.base.replanned
        self._head_in[0, : self._obs_dim] = self.base._obs_buf[0]  # the observation the base validated
        self._head_in[0, self._obs_dim :] = np.clip(self.base.spec.action.to_normalized(base_action), -1.0, 1.0)
        self._run_bound()
        if not np.isfinite(self._act_row).all():
            raise RuntimeError(f"policy produced a non-finite action {self._act_row.tolist()} for a finite observation")
        action: npt.NDArray[np.float32] = self._act_row.copy()
        return action

    def _fill_observation(self, obs: Mapping[str, Any] | npt.ArrayLike) -> None:
        """One observation (mapping or flat) into `self._obs_buf`; ValueError on a wrong shape or type. Values
        are not checked: float64 values beyond float32 range become inf here, for the caller's finiteness check."""
        if isinstance(obs, Mapping):
            self._obs_buf[...] = self.spec.observation.flatten(obs)
            return
        arr = np.asarray(obs)
        if arr.shape not in self._obs_shapes:
            raise ValueError(f"observation has shape {arr.shape}, expected ({self._obs_dim},) or (1, {self._obs_dim})")
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"observation has dtype {arr.dtype}, expected a real number type")
        with np.errstate(over="ignore", invalid="ignore"):
            self._obs_buf[...] = arr

    def _read_observation(self, obs: Mapping[str, Any] | npt.ArrayLike) -> None:
        """Validate one observation (mapping or flat) into `self._obs_buf`; ValueError if bad or non-finite."""
        self._fill_observation(obs)
        if not np.isfinite(self._obs_buf).all():
            raise ValueError(f"observation is not finite: {self._describe_non_finite(self._obs_buf[0])}")

    def observe(self, obs: Mapping[str, Any] | npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Append one observation to the kept history; returns the history `[T_o * obs_dim]` `plan` takes.

        At an episode start (after `reset`) the first observation fills the whole history. This is what `act`
        does every step; a caller that plans on its own schedule (the ROS control step) calls it every control
        tick and `plan(history)` when it replans.

        Raises:
            ValueError: wrong keys/shape/dtype or a non-finite value (the history is then unchanged).
        """
        self._read_observation(obs)
        if self._plain:
            flat: npt.NDArray[np.float32] = self._obs_buf[0].copy()
            return flat
        self._history.push(self._obs_buf[0])
        self._history.flat_into(self._plan_obs)
        history: npt.NDArray[np.float32] = self._plan_obs[0].copy()
        return history

    def _act_chunked(self, obs: Mapping[str, Any] | npt.ArrayLike) -> npt.NDArray[np.float32]:
        self._read_observation(obs)
        self._history.push(self._obs_buf[0])
        self.replanned = self._queue.empty
        if self.replanned:
            self._history.flat_into(self._plan_obs)
            self._queue.fill(self._run_plan(None))
        return self._queue.pop()

    def plan(
        self, obs_history: Mapping[str, Any] | npt.ArrayLike, noise: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.float32]:
        """One query: a chunk `[H, act_dim]` float32 in physical units (`[1, act_dim]` for a plain bundle).

        Stateless apart from the noise generator: `act`'s history and queue are not touched.

        Args:
            obs_history: the T_o most recent raw observations, oldest first, concatenated: `[T_o * obs_dim]` or
                `[1, T_o * obs_dim]` (a mapping of named arrays when T_o = 1).
            noise: the sampler's initial noise `[*noise_shape]` (or with a leading 1); None draws it from the
                policy's seeded generator (standard normal). Must be None for a bundle without a noise input.

        Raises:
            ValueError: wrong shape/dtype, non-finite values, or noise given to a bundle that takes none.
            RuntimeError: the model produced a non-finite action.
        """
        if self._plain:
            if noise is not None:
                raise ValueError("this bundle takes no noise input (manifest noise_name is null)")
            return self.act(obs_history)[None, :]
        if isinstance(obs_history, Mapping):
            if self.spec.obs_history != 1:
                raise ValueError(f"a mapping needs obs_history 1, this bundle takes {self.spec.obs_history}")
            self._plan_obs[...] = self.spec.observation.flatten(obs_history)
        else:
            _fill(self._plan_obs, obs_history, "observation history")
        if not np.isfinite(self._plan_obs).all():
            bad = np.flatnonzero(~np.isfinite(self._plan_obs[0]))
            raise ValueError(f"observation history is not finite at flat indices {bad[:10].tolist()}")
        return self._run_plan(noise).copy()

    def _run_plan(self, noise: npt.ArrayLike | None) -> npt.NDArray[np.float32]:
        """Run the bound graph on `self._plan_obs`; returns a view `[H, act_dim]` of the output buffer (a noise
        actor on a base bundle: the base's chunk for the noise the graph chose)."""
        if self._steers:
            return self._plan_on_base(noise)
        if self._noise_shape is not None:
            if noise is None:
                self._rng.standard_normal(dtype=np.float32, out=self._plan_noise)
            else:
                _fill(self._plan_noise, noise, "noise")
                if not np.isfinite(self._plan_noise).all():
                    raise ValueError("noise is not finite")
        elif noise is not None:
            raise ValueError("this bundle takes no noise input (manifest noise_name is null)")
        self._run_bound()
        chunk = self._plan_out.reshape(-1, self._act_dim)
        if not np.isfinite(chunk).all():
            raise RuntimeError(f"policy produced a non-finite chunk {chunk.tolist()} for a finite observation history")
        return chunk

    def _plan_on_base(self, noise: npt.ArrayLike | None) -> npt.NDArray[np.float32]:
        """The noise this graph chooses for `self._plan_obs`, planned by the base bundle's sampler."""
        assert self.base is not None and self.base.noise_shape is not None
        if noise is not None:
            raise ValueError("this bundle chooses its base's noise itself and takes none")
        self._run_bound()
        if not np.isfinite(self._plan_out).all():
            raise RuntimeError("the noise actor produced a non-finite noise for a finite observation history")
        return self.base.plan(self._plan_obs[0], self._plan_out.reshape(self.base.noise_shape))

    def plan_batch(self, obs_history: npt.ArrayLike, noise: npt.ArrayLike | None = None) -> npt.NDArray[np.float32]:
        """Chunks `[B, H, act_dim]` for observation histories `[B, T_o * obs_dim]` and noise `[B, *noise_shape]`.

        For a plain bundle it is `act_batch` with a chunk axis of 1. Noise None draws from the seeded generator.

        Raises:
            ValueError: wrong shape/dtype, non-finite values, or noise given to a bundle that takes none.
            RuntimeError: the model produced a non-finite action.
        """
        if self._plain:
            if noise is not None:
                raise ValueError("this bundle takes no noise input (manifest noise_name is null)")
            return self.act_batch(obs_history)[:, None, :]
        batch = _finite_batch(obs_history, (self._in_dim,), "observation history batch")
        if self._steers:
            assert self.base is not None and self.base.noise_shape is not None
            if noise is not None:
                raise ValueError("this bundle chooses its base's noise itself and takes none")
            chosen = self.session.run([self._output_name], {self._input_name: batch})[0]
            if not np.isfinite(chosen).all():
                raise RuntimeError("the noise actor produced non-finite noise")
            return self.base.plan_batch(batch, chosen.reshape(len(batch), *self.base.noise_shape))
        feeds = {self._input_name: batch}
        if self._noise_shape is not None:
            if noise is None:
                noise_arr = self._rng.standard_normal((len(batch), *self._noise_shape), dtype=np.float32)
            else:
                noise_arr = _finite_batch(noise, self._noise_shape, "noise batch")
                if len(noise_arr) != len(batch):
                    raise ValueError(f"noise batch has {len(noise_arr)} rows, observation batch {len(batch)}")
            assert self.manifest.noise_name is not None
            feeds[self.manifest.noise_name] = noise_arr
        elif noise is not None:
            raise ValueError("this bundle takes no noise input (manifest noise_name is null)")
        try:
            out: npt.NDArray[np.float32] = self.session.run([self._output_name], feeds)[0]
        except Exception as exc:  # onnxruntime's exception types do not derive from RuntimeError
            raise RuntimeError(f"onnxruntime inference failed: {exc}") from exc
        chunks = out.reshape(len(batch), -1, self._act_dim)
        if not np.isfinite(chunks).all():
            rows = np.flatnonzero(~np.isfinite(chunks).all(axis=(1, 2)))
            raise RuntimeError(f"policy produced non-finite chunks in rows {rows[:10].tolist()}")
        return chunks

    def _raise_non_finite(self) -> None:
        obs, action = self._obs_buf[0], self._act_row
        if not np.isfinite(obs).all():
            raise ValueError(f"observation is not finite: {self._describe_non_finite(obs)}")
        raise RuntimeError(f"policy produced a non-finite action {action.tolist()} for a finite observation")

    def act_batch(self, obs: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Actions `[B, act_dim]` float32 in physical units for raw observations `[B, obs_dim]` (plain bundles;
        a chunked, history or sampler bundle has no stateless per-observation action: use `plan_batch`).

        Raises:
            ValueError: wrong shape/dtype or a non-finite value, or a non-plain bundle.
            RuntimeError: the model produced a non-finite action.
        """
        if not self._plain:
            raise ValueError("act_batch runs plain bundles only; use plan_batch(obs_history, noise) for this bundle")
        if self.base is not None and not self.base._plain:
            raise ValueError(
                "act_batch needs a stateless policy; this one runs on a chunked or sampler base bundle (use act)"
            )
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
        if self.base is not None:
            proposal = np.clip(self.base.spec.action.to_normalized(self.base.act_batch(batch)), -1.0, 1.0)
            batch = np.concatenate([batch, proposal.astype(np.float32)], axis=1)
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
        chunked = "" if self._plain else f", chunk_size={self.chunk_size}, obs_history={self.obs_history}"
        sampler = "" if self.sampler is None else f", sampler={self.sampler.kind}/{self.sampler.steps}"
        sampler += "" if self.base is None else f", base={self.base!r}"
        return (
            f"OnnxPolicy(bundle_dir={str(self.bundle_dir)!r}, obs_dim={self._obs_dim}, "
            f"act_dim={self._act_dim}{chunked}{sampler}, sha256={self.manifest.onnx_sha256[:12]}…)"
        )


def _fill(dst: npt.NDArray[np.float32], value: npt.ArrayLike, label: str) -> None:
    """Copy one query `value` (shape `dst.shape[1:]` or `dst.shape`) into the batch-1 buffer `dst`."""
    arr = np.asarray(value)
    if arr.shape not in (dst.shape[1:], dst.shape):
        raise ValueError(f"{label} has shape {arr.shape}, expected {dst.shape[1:]} or {dst.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{label} has dtype {arr.dtype}, expected a real number type")
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32 range becomes inf, caught by the caller
        dst[...] = arr.reshape(dst.shape)


def _finite_batch(value: npt.ArrayLike, row_shape: tuple[int, ...], label: str) -> npt.NDArray[np.float32]:
    """`value` as a contiguous float32 batch `[B >= 1, *row_shape]` of finite numbers, or ValueError."""
    arr = np.asarray(value)
    if arr.ndim != 1 + len(row_shape) or arr.shape[0] < 1 or arr.shape[1:] != row_shape:
        raise ValueError(f"{label} has shape {arr.shape}, expected (B >= 1, {', '.join(map(str, row_shape))})")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{label} has dtype {arr.dtype}, expected a real number type")
    with np.errstate(over="ignore", invalid="ignore"):
        batch = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(batch).reshape(len(batch), -1).all(axis=1)
    if not finite.all():
        raise ValueError(f"{label} has non-finite values in rows {np.flatnonzero(~finite)[:10].tolist()}")
    return batch
