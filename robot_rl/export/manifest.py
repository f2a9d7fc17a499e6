"""The bundle manifest (`manifest.json`) and the file helpers that write bundles safely (no torch).

A bundle directory holds `policy.onnx`, a `README.md` model card and `manifest.json` (and `lyapunov.onnx`, the
Lyapunov critic, when the manifest declares one: `LyapunovInfo`). The
manifest is written last and atomically, so its presence is the "this bundle is valid" marker:
a crash mid-export leaves at most a bundle without a manifest, which every loader refuses.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Re-exported: the bundle's file helpers live in core so checkpoints and recorders share them.
from robot_rl.core.fileio import atomic_write_bytes as atomic_write_bytes
from robot_rl.core.fileio import atomic_write_text as atomic_write_text
from robot_rl.core.fileio import fsync_dir as fsync_dir
from robot_rl.core.fileio import sha256_bytes as sha256_bytes
from robot_rl.core.fileio import sha256_file as sha256_file
from robot_rl.core.specs import PolicySpec, is_v1_robot_spec
from robot_rl.export.errors import BundleError

FORMAT_VERSION = 2
"""Manifest layout written by this code. 2: typed `policy_spec.robot`, physical actions out for every bundle."""
READABLE_FORMATS = (1, 2)
"""Layouts this code reads: a format-1 bundle of a plain Gymnasium env loads as it is; one of a robot env
(normalized actions out) is refused with the command that re-exports it. The chunked-sampler fields
(`noise_name`, `noise_shape`, `sampler`) are optional format-2 fields: written only by bundles that use them, so
every plain bundle keeps the exact format-2 layout older readers know (an older reader refuses a sampler bundle
by naming the fields it does not know, which is the right answer: it cannot run it)."""
MANIFEST_FILE = "manifest.json"
"""File name of the manifest inside a bundle directory."""
ONNX_FILE = "policy.onnx"
"""File name of the ONNX model inside a bundle directory."""
MODEL_CARD_FILE = "README.md"
"""File name of the human-readable model card inside a bundle directory."""
INPUT_NAME = "obs"
"""Name of the graph input: raw observations `[batch, obs_dim]` float32."""
OUTPUT_NAME = "action"
"""Name of the graph output: physical actions `[batch, act_dim]` (or `[batch, H, act_dim]`) float32."""
NOISE_NAME = "noise"
"""Name of a sampler graph's second input: the initial noise `[batch, *noise_shape]` float32."""
BATCH_DIM = "batch"
"""Placeholder for the dynamic batch dimension in `input_shape` / `output_shape`."""
META_SPEC_KEY = "robot_rl.policy_spec"
"""ONNX metadata_props key holding the PolicySpec JSON; the runtime checks it against the manifest."""
META_FORMAT_KEY = "robot_rl.format_version"
"""ONNX metadata_props key holding the bundle format version."""
META_BASE_KEY = "robot_rl.base_bundle"
"""ONNX metadata_props key holding `BaseBundleInfo.to_json()` of a graph that runs on a base bundle; absent
otherwise. Covered by the hash, so a manifest whose base record (directory, the base's sha256) was edited is
refused."""
META_SAMPLER_KEY = "robot_rl.sampler"
"""ONNX metadata_props key holding `Manifest.sampler_record()` (noise input and sampler) of a sampler bundle;
absent from plain bundles. Covered by the hash, so the runtime refuses a manifest whose record was edited."""
META_LYAPUNOV_KEY = "robot_rl.lyapunov"
"""ONNX metadata_props key of the POLICY graph holding `LyapunovInfo.record()` (file, sha256, α₃) of the bundle's
Lyapunov critic; absent otherwise. Covered by the policy's hash, so an edited or removed manifest record is
refused."""
LYAPUNOV_FILE = "lyapunov.onnx"
"""File name of a bundle's Lyapunov critic graph (`obs`, `action` → `lyapunov`)."""
LYAPUNOV_ACTION_NAME = "action"
"""Name of the critic graph's second input: physical actions `[batch, act_dim]` float32 (the first is `obs`)."""
LYAPUNOV_OUTPUT_NAME = "lyapunov"
"""Name of the critic graph's output: `L(s, a) >= 0`, `[batch]` float32."""
OPTIONAL_FIELDS = ("noise_name", "noise_shape", "sampler", "base", "lyapunov")
"""Manifest fields that only sampler bundles (`noise_*`, `sampler`), bundles on a base bundle (`base`) or bundles
with a Lyapunov critic (`lyapunov`) carry (absent in plain bundles and in every older bundle)."""

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PARITY_KEYS = ("n_samples", "max_abs_diff", "tolerance")
_LYAPUNOV_PARITY_KEYS = ("n_samples", "max_abs_diff", "max_rel_diff", "tolerance")
_CRITERION_FLOAT64 = "float64-reference"


def _finite_number(value: Any) -> float | None:
    """`value` as a float if it is a finite JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _passed_float64_criterion(parity: Mapping[str, Any], max_abs_diff: float) -> bool:
    """Whether `parity` records a passed float64-reference check covering `max_abs_diff`."""
    ceiling = _finite_number(parity.get("hard_ceiling"))
    fraction = _finite_number(parity.get("max_fraction_of_allowed"))
    if parity.get("criterion") != _CRITERION_FLOAT64 or ceiling is None or fraction is None:
        return False
    return 0 <= fraction <= 1 and max_abs_diff <= ceiling


def _check_json_value(name: str, value: Any) -> None:
    """Raise ValueError unless `value` survives strict JSON (no NaN/Inf, only JSON types)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"manifest field {name!r} is not JSON-serializable: {exc}") from exc


def expected_input_shape(spec: PolicySpec, on_base: bool = False) -> tuple[str | int, ...]:
    """Graph input shape a spec implies: `("batch", T_o * obs_dim)` (the T_o most recent observations, oldest
    first, concatenated); `("batch", obs_dim + act_dim)` for a residual on a base bundle (`BaseBundleInfo` feeding
    `proposal`)."""
    if on_base:
        return (BATCH_DIM, spec.observation.dim + spec.action.dim)
    return (BATCH_DIM, spec.obs_history * spec.observation.dim)


def _bare_name(label: str, name: Any, what: str = "name") -> None:
    """Refuse anything but a bare file or directory name (a manifest must not point the loader elsewhere)."""
    bare = isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name
    if not bare or "/" in name or "\\" in name:
        raise ValueError(f"manifest {label} must be a bare {what}, got {name!r}")


BASE_FEEDS = ("proposal", "noise")
"""What a graph on a base bundle and the base exchange (`BaseBundleInfo.feeds`)."""


@dataclass(frozen=True)
class BaseBundleInfo:
    """The frozen base bundle a policy runs on, kept inside the bundle directory and pinned by its model's sha256.
    The runtime loads and verifies it and refuses one whose sha256 differs. What this graph feeds it (`feeds`):

    - `proposal` (a residual on a bundle, chunked or sampler base): the base runs every step; this graph's input is
      `[obs, proposal]` (`[batch, O + A]`), the raw observation and the base's action mapped to normalized units and
      clipped to [-1, 1] as the learner saw it; its output is the action. The bundle is a plain policy.
    - `noise` (noise-space steering of a sampler base bundle): this graph maps the observation history
      `[batch, T_o · O]` to the base's initial noise `[batch, N]` (N = the base's noise size) and the base's
      sampler turns it into the chunk. The bundle is the base's chunked policy without a noise input."""

    dir: str
    """Sub-directory of the bundle holding the base bundle (a bare name, e.g. "base")."""
    onnx_sha256: str
    """sha256 of the base bundle's policy.onnx: the base this policy was trained on."""
    feeds: str = "proposal"
    """What this graph and the base exchange: `proposal` or `noise` (see the class docstring)."""

    def __post_init__(self) -> None:
        _bare_name("base.dir", self.dir)
        if not isinstance(self.onnx_sha256, str) or not _SHA256_RE.match(self.onnx_sha256):
            raise ValueError(f"manifest base.onnx_sha256 must be 64 lower-case hex digits, got {self.onnx_sha256!r}")
        if self.feeds not in BASE_FEEDS:
            raise ValueError(f"manifest base.feeds must be one of {list(BASE_FEEDS)}, got {self.feeds!r}")

    def to_json(self) -> dict[str, Any]:
        return {"dir": self.dir, "onnx_sha256": self.onnx_sha256, "feeds": self.feeds}

    @classmethod
    def from_json(cls, data: Any) -> BaseBundleInfo:
        if not isinstance(data, Mapping) or set(data) != {"dir", "onnx_sha256", "feeds"}:
            raise ValueError(
                f"manifest base must be an object with exactly 'dir', 'onnx_sha256' and 'feeds', got {data!r}"
            )
        return cls(dir=data["dir"], onnx_sha256=data["onnx_sha256"], feeds=data["feeds"])


@dataclass(frozen=True)
class LyapunovInfo:
    """The bundle's Lyapunov critic (a LAC run's): a second graph `obs [batch, O]` (raw), `action [batch, A]`
    (physical) → `lyapunov [batch]` ≥ 0, which the policy node's `lyapunov` monitor link evaluates along the real
    trajectory. `record()` (everything but `parity`) is embedded in the policy graph's metadata
    (`META_LYAPUNOV_KEY`): the critic's file and hash are pinned by the policy's sha256, so a pinned or signed policy
    pins its critic too. `parity` is the export's report of its own check, like the policy's (not embedded: it
    describes the check, the runtime acts on nothing in it)."""

    file: str
    """The critic graph's file inside the bundle directory (a bare name, "lyapunov.onnx")."""
    onnx_sha256: str
    """Lower-case hex sha256 of that file; the runtime refuses a file that does not match."""
    alpha3: float
    """α₃ ≥ 0, the decrease rate the critic was trained with (LAC's `alpha3`; L' − L + α₃·c ≤ 0, Han eq. 11)."""
    parity: Mapping[str, Any]
    """The critic graph's parity record: at least n_samples, max_abs_diff, max_rel_diff (max |Δ| / max(1, |L|))
    and tolerance, with max_rel_diff <= tolerance."""

    def __post_init__(self) -> None:
        _bare_name("lyapunov.file", self.file, "file name")
        if not isinstance(self.onnx_sha256, str) or not _SHA256_RE.match(self.onnx_sha256):
            raise ValueError(
                f"manifest lyapunov.onnx_sha256 must be 64 lower-case hex digits, got {self.onnx_sha256!r}"
            )
        alpha3 = _finite_number(self.alpha3)
        if alpha3 is None or alpha3 < 0:
            raise ValueError(f"manifest lyapunov.alpha3 must be a finite number >= 0, got {self.alpha3!r}")
        parity = self.parity
        if not isinstance(parity, Mapping):
            raise ValueError(f"manifest lyapunov.parity must be a JSON object, got {type(parity).__name__}")
        missing = [k for k in _LYAPUNOV_PARITY_KEYS if k not in parity]
        if missing:
            raise ValueError(f"manifest lyapunov.parity is missing {missing}; needs {list(_LYAPUNOV_PARITY_KEYS)}")
        n = parity["n_samples"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"manifest lyapunov.parity.n_samples must be a positive integer, got {n!r}")
        for key in _LYAPUNOV_PARITY_KEYS[1:]:
            value = _finite_number(parity[key])
            if value is None or value < 0:
                raise ValueError(f"manifest lyapunov.parity.{key} must be a finite number >= 0, got {parity[key]!r}")
        # As for the policy: a manifest recording a failed check is not a valid bundle.
        if parity["max_rel_diff"] > parity["tolerance"]:
            raise ValueError(
                f"manifest lyapunov.parity records a failed check: max_rel_diff {parity['max_rel_diff']} > "
                f"tolerance {parity['tolerance']}"
            )
        _check_json_value("lyapunov.parity", dict(parity))

    def record(self) -> dict[str, Any]:
        """What the policy graph embeds under `META_LYAPUNOV_KEY`: file, sha256 and α₃."""
        return {"file": self.file, "onnx_sha256": self.onnx_sha256, "alpha3": float(self.alpha3)}

    def to_json(self) -> dict[str, Any]:
        return {**self.record(), "parity": dict(self.parity)}

    @classmethod
    def from_json(cls, data: Any) -> LyapunovInfo:
        keys = {"file", "onnx_sha256", "alpha3", "parity"}
        if not isinstance(data, Mapping) or set(data) != keys:
            raise ValueError(
                f"manifest lyapunov must be an object with exactly {sorted(keys)}, got "
                f"{sorted(data) if isinstance(data, Mapping) else data!r}"
            )
        return cls(file=data["file"], onnx_sha256=data["onnx_sha256"], alpha3=data["alpha3"], parity=data["parity"])


def expected_output_shape(spec: PolicySpec) -> tuple[str | int, ...]:
    """Graph output shape a spec implies: `("batch", act_dim)`, or `("batch", H, act_dim)` for a chunk H > 1."""
    if spec.chunk_size == 1:
        return (BATCH_DIM, spec.action.dim)
    return (BATCH_DIM, spec.chunk_size, spec.action.dim)


def _check_shape(name: str, shape: tuple[str | int, ...], expected: tuple[str | int, ...], why: str) -> None:
    if tuple(shape) != expected:
        raise ValueError(f"manifest {name} is {list(shape)}, expected {list(expected)} from the policy spec ({why})")


@dataclass(frozen=True)
class SamplerInfo:
    """The iterative sampler unrolled inside a bundle's graph (diffusion, flow matching, MeanFlow)."""

    kind: str
    """Sampler family as the policy module names it (`sampler_kind`, e.g. "ddim", "flow", "meanflow")."""
    steps: int | None
    """K: network evaluations unrolled in the graph, fixed at export (`sampler_steps`; None if undeclared)."""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"manifest sampler.kind must be a non-empty string, got {self.kind!r}")
        steps = self.steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"manifest sampler.steps must be a positive integer or null, got {steps!r}")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "steps": self.steps}

    @classmethod
    def from_json(cls, data: Any) -> SamplerInfo:
        if not isinstance(data, Mapping) or set(data) != {"kind", "steps"}:
            raise ValueError(f"manifest sampler must be an object with exactly 'kind' and 'steps', got {data!r}")
        return cls(kind=data["kind"], steps=data["steps"])


def make_sampler_record(
    noise_name: str | None, noise_shape: tuple[str | int, ...] | None, sampler: SamplerInfo | None
) -> dict[str, Any] | None:
    """The sampler fields as JSON (`noise_name`, `noise_shape`, `sampler`), or None when all are absent."""
    if noise_name is None and noise_shape is None and sampler is None:
        return None
    return {
        "noise_name": noise_name,
        "noise_shape": None if noise_shape is None else list(noise_shape),
        "sampler": None if sampler is None else sampler.to_json(),
    }


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What a bundle promises: the spec, the model file's hash, its I/O signature and how it was checked."""

    policy_spec: PolicySpec
    """Observation/action spec the model was exported for (the runtime feeds and checks with it)."""
    onnx_sha256: str
    """Lower-case hex sha256 of the ONNX file; the runtime refuses a file that does not match."""
    onnx_opset: int
    """Default-domain ONNX opset the graph was exported with."""
    input_shape: tuple[str | int, ...]
    """Graph input shape, `("batch", T_o * obs_dim)` (T_o = `policy_spec.obs_history`, 1 for most policies);
    "batch" marks the dynamic dimension."""
    output_shape: tuple[str | int, ...]
    """Graph output shape, `("batch", act_dim)`, or `("batch", H, act_dim)` for a chunk (H = `policy_spec.chunk_size`
    > 1)."""
    created_utc: str
    """Export time, ISO 8601 in UTC (e.g. "2025-01-31T12:00:00Z")."""
    source_revision: str
    """`git rev-parse HEAD` of the exporting checkout, "-dirty" appended if it had changes; or "unknown"."""
    parity: Mapping[str, Any]
    """Parity check record: at least n_samples, max_abs_diff and tolerance, with max_abs_diff <= tolerance
    or (criterion "float64-reference", max_fraction_of_allowed <= 1 and max_abs_diff <= hard_ceiling)."""
    training_config: Mapping[str, Any] = field(default_factory=dict)
    """The algorithm/train config as JSON, for provenance."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Free-form JSON metadata (env id, checkpoint step, ...)."""
    format_version: int = FORMAT_VERSION
    """Manifest layout version."""
    onnx_file: str = ONNX_FILE
    """ONNX file name inside the bundle directory (a bare name, never a path)."""
    input_name: str = INPUT_NAME
    """Name of the graph input."""
    output_name: str = OUTPUT_NAME
    """Name of the graph output."""
    noise_name: str | None = None
    """Name of the graph's explicit noise input (a sampler's initial noise), or None: the graph takes no noise."""
    noise_shape: tuple[str | int, ...] | None = None
    """Shape of the noise input, `("batch", *noise_shape)` (usually `("batch", H, act_dim)`); None without one."""
    sampler: SamplerInfo | None = None
    """The sampler unrolled in the graph (kind, K steps), or None for a policy that is not an iterative sampler."""
    base: BaseBundleInfo | None = None
    """The base bundle this policy runs on (its proposal is the graph's second input), or None."""
    lyapunov: LyapunovInfo | None = None
    """The bundle's Lyapunov critic graph (a LAC run's), or None: the policy carries no stability certificate."""

    def __post_init__(self) -> None:
        if self.format_version not in READABLE_FORMATS:
            raise ValueError(
                f"manifest format_version {self.format_version} is not supported (this code reads "
                f"{list(READABLE_FORMATS)}; a newer robot_rl wrote it)"
            )
        if not isinstance(self.policy_spec, PolicySpec):
            raise ValueError(f"manifest policy_spec must be a PolicySpec, got {type(self.policy_spec)}")
        _check_json_value("policy_spec", self.policy_spec.to_json())
        if not isinstance(self.onnx_sha256, str) or not _SHA256_RE.match(self.onnx_sha256):
            raise ValueError(f"manifest onnx_sha256 must be 64 lower-case hex digits, got {self.onnx_sha256!r}")
        _bare_name("onnx_file", self.onnx_file, "file name")
        if isinstance(self.onnx_opset, bool) or not isinstance(self.onnx_opset, int) or self.onnx_opset < 7:
            raise ValueError(f"manifest onnx_opset must be an integer >= 7, got {self.onnx_opset!r}")
        for label, value in (("input_name", self.input_name), ("output_name", self.output_name)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"manifest {label} must be a non-empty string, got {value!r}")
        spec = self.policy_spec
        self._check_base()
        proposal = self.base is not None and self.base.feeds == "proposal"
        _check_shape(
            "input_shape",
            self.input_shape,
            expected_input_shape(spec, proposal),
            f"obs_history {spec.obs_history} x observation dim {spec.observation.dim}"
            + (f" + the base's proposal {spec.action.dim}" if proposal else ""),
        )
        if self.base is None or proposal:
            _check_shape(
                "output_shape",
                self.output_shape,
                expected_output_shape(spec),
                f"chunk_size {spec.chunk_size}, action dim {spec.action.dim}",
            )
        self._check_noise()
        self._check_lyapunov()
        if self.sampler is not None and not isinstance(self.sampler, SamplerInfo):
            raise ValueError(f"manifest sampler must be a SamplerInfo, got {type(self.sampler).__name__}")
        try:
            datetime.fromisoformat(self.created_utc)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"manifest created_utc is not an ISO 8601 time: {self.created_utc!r}") from exc
        if not isinstance(self.source_revision, str) or not self.source_revision:
            raise ValueError(f"manifest source_revision must be a non-empty string, got {self.source_revision!r}")
        self._check_parity()
        for label, mapping in (
            ("parity", self.parity),
            ("training_config", self.training_config),
            ("extra", self.extra),
        ):
            if not isinstance(mapping, Mapping):
                raise ValueError(f"manifest {label} must be a JSON object, got {type(mapping).__name__}")
            _check_json_value(label, dict(mapping))

    def _check_base(self) -> None:
        if self.base is None:
            return
        if not isinstance(self.base, BaseBundleInfo):
            raise ValueError(f"manifest base must be a BaseBundleInfo, got {type(self.base).__name__}")
        spec = self.policy_spec
        if self.noise_name is not None:
            raise ValueError("a policy on a base bundle takes no noise input (the base bundle's sampler draws none)")
        if self.base.feeds == "proposal" and (spec.obs_history != 1 or spec.chunk_size != 1):
            raise ValueError("a residual on a base bundle is plain (obs_history 1, chunk_size 1)")
        if self.base.feeds == "noise":
            dims = tuple(self.output_shape)
            if len(dims) != 2 or dims[0] != BATCH_DIM or not isinstance(dims[1], int) or dims[1] < 1:
                raise ValueError(f"manifest output_shape of a noise actor must be [{BATCH_DIM!r}, N], got {list(dims)}")

    def _check_lyapunov(self) -> None:
        if self.lyapunov is None:
            return
        if not isinstance(self.lyapunov, LyapunovInfo):
            raise ValueError(f"manifest lyapunov must be a LyapunovInfo, got {type(self.lyapunov).__name__}")
        spec = self.policy_spec
        # The monitor evaluates L(s_t, π(s_t)) on one observation and one action: a plain policy's signature.
        if spec.obs_history != 1 or spec.chunk_size != 1 or self.noise_name is not None or self.base is not None:
            raise ValueError("manifest lyapunov: a Lyapunov critic is carried by plain bundles only")
        if self.lyapunov.file == self.onnx_file:
            raise ValueError(f"manifest lyapunov.file {self.lyapunov.file!r} is the policy's own onnx_file")

    def _check_noise(self) -> None:
        name, shape = self.noise_name, self.noise_shape
        if (name is None) != (shape is None):
            raise ValueError(f"manifest noise_name {name!r} and noise_shape {shape!r} must be given together")
        if name is None or shape is None:
            return
        if not isinstance(name, str) or not name or name in (self.input_name, self.output_name):
            raise ValueError(f"manifest noise_name must be a non-empty string naming a third tensor, got {name!r}")
        dims = tuple(shape)
        if (
            len(dims) < 2
            or dims[0] != BATCH_DIM
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims[1:])
        ):
            raise ValueError(f"manifest noise_shape must be [{BATCH_DIM!r}, positive ints...], got {list(dims)}")

    def sampler_record(self) -> dict[str, Any] | None:
        """The sampler fields as JSON (`noise_name`, `noise_shape`, `sampler`), or None for a plain bundle.

        The exporter embeds this record in the ONNX metadata (`META_SAMPLER_KEY`), which the hash covers, and the
        runtime compares the manifest's with it, so an edited noise shape or step count is refused.
        """
        return make_sampler_record(self.noise_name, self.noise_shape, self.sampler)

    def _check_parity(self) -> None:
        parity = self.parity
        if not isinstance(parity, Mapping):
            raise ValueError(f"manifest parity must be a JSON object, got {type(parity).__name__}")
        missing = [k for k in _PARITY_KEYS if k not in parity]
        if missing:
            raise ValueError(f"manifest parity is missing {missing}; needs {list(_PARITY_KEYS)}")
        n, diff, tol = parity["n_samples"], parity["max_abs_diff"], parity["tolerance"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"manifest parity n_samples must be a positive integer, got {n!r}")
        for label, value in (("max_abs_diff", diff), ("tolerance", tol)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"manifest parity {label} must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"manifest parity {label} must be >= 0, got {value!r}")
        # The manifest is the validity marker: one that records a failed check is not a valid bundle.
        # Beyond the tolerance only the float64-reference criterion (onnxruntime as accurate as torch's
        # own float32 evaluation, see onnx_export._verify_parity) can have passed, within its hard ceiling.
        if diff > tol and not _passed_float64_criterion(parity, diff):
            raise ValueError(
                f"manifest parity records a failed check: max_abs_diff {diff} > tolerance {tol} "
                f"(and no passed {_CRITERION_FLOAT64!r} check within its hard_ceiling)"
            )

    def to_json(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict (shapes as lists, spec via PolicySpec.to_json).

        The optional sampler, base and lyapunov fields appear only when set, so a plain bundle's manifest is
        unchanged.
        """
        data: dict[str, Any] = {
            "format_version": self.format_version,
            "policy_spec": self.policy_spec.to_json(),
            "onnx_file": self.onnx_file,
            "onnx_sha256": self.onnx_sha256,
            "onnx_opset": self.onnx_opset,
            "input_name": self.input_name,
            "output_name": self.output_name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "created_utc": self.created_utc,
            "source_revision": self.source_revision,
            "training_config": dict(self.training_config),
            "parity": dict(self.parity),
            "extra": dict(self.extra),
        }
        record = self.sampler_record()
        if record is not None:
            data.update(record)
        if self.base is not None:
            data["base"] = self.base.to_json()
        if self.lyapunov is not None:
            data["lyapunov"] = self.lyapunov.to_json()
        return data

    def dumps(self) -> str:
        """Strict JSON text of the manifest (NaN/Inf refused), with a trailing newline."""
        return json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Build and validate a manifest from parsed JSON.

        Raises:
            ValueError: a field is missing, unknown, of the wrong type or inconsistent.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"manifest must be a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"manifest has unknown fields {unknown}")
        missing = sorted(k for k in known if k not in data and k not in OPTIONAL_FIELDS)
        if missing:
            raise ValueError(f"manifest is missing fields {missing}")
        spec_json = data["policy_spec"]
        if not isinstance(spec_json, Mapping):
            raise ValueError("manifest policy_spec must be a JSON object")
        if data["format_version"] == 1 and is_v1_robot_spec(spec_json):
            run_dir = data["extra"].get("run_dir", "RUN_DIR") if isinstance(data["extra"], Mapping) else "RUN_DIR"
            raise ValueError(
                "bundle format 1 of a robot env: its policy.onnx emits normalized actions in [-1, 1], and since "
                "format 2 every bundle emits physical commands. Re-export it from its training run: "
                f"`robot-rl export {run_dir} --out <bundle dir> --overwrite`"
            )
        try:
            spec = PolicySpec.from_json(spec_json)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"manifest policy_spec is invalid: {exc!r}") from exc
        for label in ("input_shape", "output_shape"):
            if not isinstance(data[label], list):
                raise ValueError(f"manifest {label} must be a list, got {data[label]!r}")
        noise_name, noise_shape, sampler = data.get("noise_name"), data.get("noise_shape"), data.get("sampler")
        if noise_name is not None and not isinstance(noise_name, str):
            raise ValueError(f"manifest noise_name must be a string, got {noise_name!r}")
        if noise_shape is not None and not isinstance(noise_shape, list):
            raise ValueError(f"manifest noise_shape must be a list, got {noise_shape!r}")
        for label in ("format_version", "onnx_opset"):
            if isinstance(data[label], bool) or not isinstance(data[label], int):
                raise ValueError(f"manifest {label} must be an integer, got {data[label]!r}")
        for label in (
            "onnx_file",
            "onnx_sha256",
            "input_name",
            "output_name",
            "created_utc",
            "source_revision",
        ):
            if not isinstance(data[label], str):
                raise ValueError(f"manifest {label} must be a string, got {data[label]!r}")
        return cls(
            format_version=data["format_version"],
            policy_spec=spec,
            onnx_file=data["onnx_file"],
            onnx_sha256=data["onnx_sha256"],
            onnx_opset=data["onnx_opset"],
            input_name=data["input_name"],
            output_name=data["output_name"],
            input_shape=tuple(data["input_shape"]),
            output_shape=tuple(data["output_shape"]),
            created_utc=data["created_utc"],
            source_revision=data["source_revision"],
            training_config=data["training_config"],
            parity=data["parity"],
            extra=data["extra"],
            noise_name=noise_name,
            noise_shape=None if noise_shape is None else tuple(noise_shape),
            sampler=None if sampler is None else SamplerInfo.from_json(sampler),
            base=None if data.get("base") is None else BaseBundleInfo.from_json(data["base"]),
            lyapunov=None if data.get("lyapunov") is None else LyapunovInfo.from_json(data["lyapunov"]),
        )


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with a "Z" suffix, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_revision(repo_dir: str | os.PathLike[str] | None = None) -> str:
    """`git rev-parse HEAD` of `repo_dir` (default: this checkout) plus "-dirty" if it has changes.

    Returns "unknown" when git is missing, the directory is not a repository or it has no commit.
    """
    cwd = Path(repo_dir) if repo_dir is not None else Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return head + ("-dirty" if status.strip() else "")


def write_manifest(bundle_dir: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Atomically write `manifest.json` into `bundle_dir`; returns its path."""
    path = Path(bundle_dir) / MANIFEST_FILE
    atomic_write_text(path, manifest.dumps())
    return path


def read_manifest(bundle_dir: str | os.PathLike[str]) -> Manifest:
    """Read and validate `bundle_dir/manifest.json`.

    Raises:
        BundleError: the file is missing, is not valid JSON or fails validation.
    """
    path = Path(bundle_dir) / MANIFEST_FILE
    return parse_manifest(read_manifest_bytes(bundle_dir), path)


def read_manifest_bytes(bundle_dir: str | os.PathLike[str]) -> bytes:
    """The exact bytes of `bundle_dir/manifest.json` (what a signature covers; parse them with `parse_manifest`).

    Raises:
        BundleError: the file is missing or unreadable.
    """
    path = Path(bundle_dir) / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(
            f"{path} not found: not a policy bundle, or its export did not finish (the manifest is written last)"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc


def parse_manifest(raw: bytes, path: str | os.PathLike[str] = MANIFEST_FILE) -> Manifest:
    """Validate manifest bytes read from `path` (named in messages).

    Raises:
        BundleError: not UTF-8, not valid JSON or fails validation.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc

    def _no_constants(name: str) -> float:
        raise ValueError(f"non-finite number {name}")

    try:
        data = json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from exc
    try:
        return Manifest.from_json(data)
    except ValueError as exc:
        raise BundleError(f"{path} is invalid: {exc}") from exc
