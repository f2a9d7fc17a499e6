"""Export a deployable torch policy to a verified bundle: policy.onnx + README.md + manifest.json.

The export is refused unless onnxruntime reproduces the policy on >= 10^4 random and boundary
observations (see `_verify_parity`), every action is finite and inside the
bounds, and the graph is single-file and sampling-free.

Chunked and sampler policies (`DeployablePolicy` with `obs_history` T_o, `chunk_size` H, `noise_shape`) export the
same way: the graph takes `obs [B, T_o*O]` and, for a sampler, the initial noise `noise [B, *noise_shape]` as a
second input (the fixed-K sampler is unrolled in the graph; nothing random inside it) and returns the physical
chunk `[B, H, A]`. Parity then runs the same rule on every action of the chunk, each observation with its own
fixed N(0, 1) noise drawn from the export seed. `export_policy(..., sampler_steps=k)` exports a K = k variant of
the same weights through the module's `with_steps(k)`; `export_sampler_variants` writes one bundle per K.

Nothing is written to the bundle directory until all checks pass; `manifest.json` is written last, atomically,
as the valid marker.

Reading of the parity bound ("max abs diff <= 1e-5 (fp32)"): onnxruntime and torch both evaluate the same float32
function, and neither is the exact one: each rounds in its own summation order (GEMM blocking, FMA,
tanh kernel). For a network with large weights or pre-activations torch's own float32 output is off
from the exact (float64) evaluation by more than 1e-5, so |onnxruntime - torch| > 1e-5 there says
nothing about the export. An observation therefore passes if onnxruntime is within 1e-5 of torch
(the literal bound, always sufficient), or if onnxruntime is within `FLOAT64_FACTOR` times torch's
own float32 error of a float64 reference evaluation of the same module, capped at
`PARITY_HARD_CEILING`. Real export bugs (a wrong normalizer, tanh, bias or weight) make onnxruntime
compute a different function and are far outside both.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.export.certificate import CRITIC_TOLERANCE, CriticExport, export_critic
from robot_rl.export.errors import BundleError, ExportError
from robot_rl.export.manifest import (
    BATCH_DIM,
    FORMAT_VERSION,
    INPUT_NAME,
    LYAPUNOV_FILE,
    MANIFEST_FILE,
    META_BASE_KEY,
    META_FORMAT_KEY,
    META_LYAPUNOV_KEY,
    META_SAMPLER_KEY,
    META_SPEC_KEY,
    MODEL_CARD_FILE,
    NOISE_NAME,
    ONNX_FILE,
    OUTPUT_NAME,
    BaseBundleInfo,
    LyapunovInfo,
    Manifest,
    SamplerInfo,
    atomic_write_bytes,
    atomic_write_text,
    expected_input_shape,
    expected_output_shape,
    fsync_dir,
    make_sampler_record,
    sha256_bytes,
    sha256_file,
    source_revision,
    utc_now_iso,
    write_manifest,
)
from robot_rl.export.model_card import render_model_card
from robot_rl.export.onnx_scan import scan_onnx
from robot_rl.export.runtime import OnnxPolicy, create_session, signature_problem
from robot_rl.export.tracing import trace_to_proto
from robot_rl.nets.certificate import LyapunovCertificate
from robot_rl.nets.deployable import DeployablePolicy, as_module

FloatArray = npt.NDArray[np.float32]
_Arr = TypeVar("_Arr", npt.NDArray[np.float32], npt.NDArray[np.float64])

_F32_EPS = float(np.finfo(np.float32).eps)
_CHUNK = 4096  # rows per onnxruntime batch call during the parity check
_BOUNDARY_SCALES = (1e2, 1e3, 1e4)
_N_SIGN_VECTORS = 64
_N_SATURATION_STARTS = 16

INPUT_SCALE_REF = 50.0
"""Input magnitude (normalizer std, or raw units) up to which parity must hold within the bare tolerance."""
OUT_OF_RANGE_MIN_ALLOWED = 1e-4
"""Allowed |Δ| (normalized action units, i.e. 0.01% of the action range) beyond `INPUT_SCALE_REF`."""
FLOAT64_FACTOR = 8.0
"""How much less accurate than torch's float32 evaluation onnxruntime may be (errors vs float64).

Both runtimes evaluate the same float32 graph, so their rounding errors come from the same products
and partial sums; only summation order and blocking, FMA use and the fused tanh kernel differ, which
changes the error by a constant factor, not its scale. Measured on 27-dim, 256x256 policies with
weights x10-x30 and tiny-std observation dimensions (~1,400 observations near or beyond the
tolerance, 8 policies): onnxruntime's error is 0.6-1.1x torch's error envelope on median and at most
3.5x (MLAS is systematically ~1.3x less accurate than torch's kernels there). 8 leaves a 2x margin
for other CPUs and kernels. An export bug changes the computed function: its error does not scale
with rounding and exceeds this unless it is itself below ~8x float32 rounding noise of the network,
where it is as harmless as that noise (and `PARITY_HARD_CEILING` bounds it regardless).
"""
PARITY_HARD_CEILING = 1e-3
"""Largest |Δ| (normalized action units) accepted within `INPUT_SCALE_REF`, whatever torch's own error.

Beyond `INPUT_SCALE_REF` it grows with the input magnitude like the allowance does. A bundle whose
actions are 0.1% of the range off in the operating region is refused even if float32 torch is as bad.
"""
_SMALL_ABS = 8.0 * _F32_EPS
"""Absolute slack (~1e-6) for the float64 criterion: a few ulps of tanh and the final affine map."""
_N_NEIGHBOURS = 32
"""float32-ulp neighbours of an observation on which torch's float32 error is also measured."""
_NEIGHBOUR_ULPS = 8.0
"""Each coordinate of a neighbour is moved by up to this many float32 ulps (relative)."""
CRITERION_FLOAT64 = "float64-reference"
"""`parity.criterion` when onnxruntime was judged against a float64 reference (see `_verify_parity`)."""
CRITERION_TORCH32 = "torch-float32"
"""`parity.criterion` when no float64 reference could be evaluated: |onnxruntime - torch| alone."""
_NOISE_SEED_STREAM = 0x5EED
"""Added to the export seed for the parity noise, so noise and observations come from separate streams."""


def action_bound_slack(spec: PolicySpec) -> FloatArray:
    """Per-dimension tolerance `[act_dim]` for "action within bounds" checks.

    1e-6 absolute plus 4 float32 ulps of the bound's magnitude: tanh(x) * scale + bias is computed
    in float32, so with wide bounds (e.g. ±100 N*m) a saturated action can land a few ulps outside.
    """
    low, high = spec.action.low_array, spec.action.high_array
    return (1e-6 + 4.0 * _F32_EPS * np.maximum(np.abs(low), np.abs(high))).astype(np.float32)


def _tile_bounds(bound: _Arr, width: int) -> _Arr:
    """Per-action `bound [act_dim]` repeated over a flattened chunk `[width = H * act_dim]` (H = 1: unchanged)."""
    tiled: _Arr = np.tile(bound, width // len(bound)) if width != len(bound) else bound
    return tiled


def _normalizer_stats(
    policy: nn.Module, width: int | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float] | None:
    """Mean, std `[width]` and clip of an enabled ObsNormalizer-like `policy.normalizer`, if any.

    A normalizer over one observation `[O]` is repeated over an observation history `[width = T_o * O]`.
    """
    norm = getattr(policy, "normalizer", None)
    mean, var = getattr(norm, "mean", None), getattr(norm, "var", None)
    if not getattr(norm, "enabled", False) or not isinstance(mean, torch.Tensor) or not isinstance(var, torch.Tensor):
        return None
    eps = float(getattr(norm, "eps", 0.0))
    clip = float(getattr(norm, "clip", np.inf))
    mean_np = mean.detach().cpu().double().numpy().reshape(-1)
    std_np = np.sqrt(var.detach().cpu().double().numpy().reshape(-1) + eps)
    if width is not None and width != len(mean_np):
        if len(mean_np) == 0 or width % len(mean_np):
            return None
        mean_np, std_np = np.tile(mean_np, width // len(mean_np)), np.tile(std_np, width // len(std_np))
    return mean_np, std_np, clip


def input_magnitude(policy: nn.Module, obs: FloatArray) -> npt.NDArray[np.float64]:
    """Per-row magnitude `[N]` of what the network sees: max |normalized obs| (clipped), or max |obs|."""
    stats = _normalizer_stats(policy, obs.shape[1])
    obs64 = obs.astype(np.float64)
    if stats is None:
        raw: npt.NDArray[np.float64] = np.abs(obs64).max(axis=1)
        return raw
    mean, std, clip = stats
    normalized: npt.NDArray[np.float64] = np.minimum(np.abs((obs64 - mean) / std).max(axis=1), clip)
    return normalized


def _call(model: nn.Module, obs: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """The policy's forward: `model(obs)` for a policy without a noise input, else `model(obs, noise)`."""
    out: torch.Tensor = model(obs) if noise is None else model(obs, noise)
    return out


def _noise_of(model: nn.Module) -> tuple[int, ...] | None:
    """The per-sample noise shape `model` takes (`noise_shape`), or None."""
    shape = getattr(model, "noise_shape", None)
    return None if shape is None else tuple(int(d) for d in shape)


def _sampler_of(model: nn.Module) -> SamplerInfo | None:
    """The sampler record of `model` (`sampler_kind`, `sampler_steps`), or None when it declares no kind."""
    kind = getattr(model, "sampler_kind", None)
    if kind is None:
        return None
    steps = getattr(model, "sampler_steps", None)
    return SamplerInfo(kind=str(kind), steps=None if steps is None else int(steps))


def parity_noise(noise_shape: tuple[int, ...], n: int, seed: int = 0) -> FloatArray:
    """The fixed noise of the parity check: one N(0, 1) draw `[n, *noise_shape]` per observation, from `seed`."""
    rng = np.random.default_rng(seed + _NOISE_SEED_STREAM)
    return rng.standard_normal((n, *noise_shape), dtype=np.float32)


def _saturating_observations(
    policy: nn.Module,
    base: npt.NDArray[np.float64],
    act_dim: int,
    step: npt.NDArray[np.float64],
    noise: FloatArray | None = None,
) -> npt.NDArray[np.float64]:
    """Push `base` observations along ±sign(d action_j / d obs) to drive each action to its bounds.

    Large sign-gradient steps (10, 100, 1000 x `step`) saturate the tanh of a ReLU/tanh trunk, which
    is where ONNX and torch tanh or the final affine map could disagree or leave the bounds. For a chunk the
    gradient is that of action j summed over the chunk (with `noise [len(base), *noise_shape]` for a sampler).
    """
    x = torch.tensor(base, dtype=torch.float32, requires_grad=True)
    noise_t = None if noise is None else torch.from_numpy(noise)
    rows: list[npt.NDArray[np.float64]] = []
    try:
        with torch.enable_grad():
            out = _call(policy, x, noise_t).reshape(len(base), -1, act_dim)
            for j in range(act_dim):
                (grad,) = torch.autograd.grad(out[:, :, j].sum(), x, retain_graph=j < act_dim - 1)
                direction = torch.sign(grad).double().numpy()
                for k in (10.0, 100.0, 1000.0):
                    rows += [base + k * step * direction, base - k * step * direction]
    except RuntimeError:  # no differentiable path from obs to action: boundary rows still cover it
        return np.zeros((0, base.shape[1]))
    return np.concatenate(rows) if rows else np.zeros((0, base.shape[1]))


def parity_observations(policy: nn.Module, spec: PolicySpec, n_random: int, seed: int = 0) -> tuple[FloatArray, int]:
    """Observations for the export parity check: boundary rows first, then `n_random` random rows.

    Boundary rows: zeros, constant ±1e2/±1e3/±1e4 vectors, per-dimension extremes, random-sign
    vectors at those scales, the normalizer's operating region at 3/10/100 std (if it has one) and
    gradient-directed observations that saturate the tanh. Random rows mix N(0, 1), N(0, 10),
    U(±1e3) and N(mean, std) of the normalizer.

    For a policy on an observation history the rows are `[T_o * obs_dim]` (every history element drawn
    independently, which covers histories no robot produces too); a sampler's saturating rows use fixed noise.

    Returns:
        `(obs [N, T_o * obs_dim] float32, number of boundary rows)`.
    """
    rng = np.random.default_rng(seed)
    dim = spec.obs_history * spec.observation.dim
    stats = _normalizer_stats(policy, dim)
    eye = np.eye(dim)
    signs = rng.choice([-1.0, 1.0], size=(_N_SIGN_VECTORS, dim))
    boundary: list[npt.NDArray[np.float64]] = [np.zeros((1, dim))]
    for v in _BOUNDARY_SCALES:
        boundary += [np.full((1, dim), v), np.full((1, dim), -v), eye * v, eye * -v, signs * v]
    starts = rng.normal(size=(_N_SATURATION_STARTS, dim))
    step = np.ones(dim)
    if stats is not None:
        mean, std, _ = stats
        boundary.append(mean[None, :])
        for k in (3.0, 10.0, 100.0):
            boundary.append(mean + k * std * signs)
        starts = mean + std * starts
        step = std
    noise_shape = _noise_of(policy)
    start_noise = None if noise_shape is None else parity_noise(noise_shape, len(starts), seed + 1)
    boundary.append(_saturating_observations(policy, starts, spec.action.dim, step, start_noise))
    groups: list[Callable[[int], npt.NDArray[np.float64]]] = [
        lambda n: rng.normal(0.0, 1.0, size=(n, dim)),
        lambda n: rng.normal(0.0, 10.0, size=(n, dim)),
        lambda n: rng.uniform(-1e3, 1e3, size=(n, dim)),
    ]
    if stats is not None:
        mean, std, _ = stats
        groups.append(lambda n: mean + std * rng.normal(size=(n, dim)))
    sizes = [n_random // len(groups)] * len(groups)
    sizes[0] += n_random - sum(sizes)
    random_rows = [make(n) for make, n in zip(groups, sizes, strict=True)]
    boundary_arr = np.concatenate(boundary)
    obs = np.concatenate([boundary_arr, *random_rows]).astype(np.float32)
    return obs, int(boundary_arr.shape[0])


def _check_policy(policy: nn.Module) -> PolicySpec:
    spec = getattr(policy, "spec", None)
    if not isinstance(spec, PolicySpec):
        raise TypeError(f"policy must have a .spec PolicySpec attribute, got {type(spec).__name__}")
    try:
        json.dumps(spec.to_json(), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"policy spec must be JSON-serializable (spec.metadata?): {exc}") from exc
    for name, default in (("obs_history", 1), ("chunk_size", 1)):
        value = getattr(policy, name, default)
        if value != getattr(spec, name):
            raise ExportError(f"policy.{name} is {value} but its spec says {getattr(spec, name)}")
    noise_shape = getattr(policy, "noise_shape", None)
    if noise_shape is not None and (
        not isinstance(noise_shape, tuple | list)
        or not noise_shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in noise_shape)
    ):
        raise ExportError(f"policy.noise_shape must be None or a tuple of positive ints, got {noise_shape!r}")
    try:
        _sampler_of(policy)
    except ValueError as exc:
        raise ExportError(f"policy sampler_kind/sampler_steps are invalid: {exc}") from exc
    with torch.no_grad():
        for name, tensor in itertools.chain(policy.named_parameters(), policy.named_buffers()):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                n_bad = int((~torch.isfinite(tensor)).sum())
                raise ExportError(
                    f"policy tensor {name!r} (shape {tuple(tensor.shape)}) has {n_bad} non-finite values; "
                    "refusing to export"
                )
    for name, param in policy.named_parameters():
        if param.dtype != torch.float32:
            raise ExportError(f"policy parameter {name!r} is {param.dtype}; the bundle format is float32")
    return spec


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"bundle path {out_dir} exists and is not a directory")
    existing = [name for name in (MANIFEST_FILE, ONNX_FILE) if (out_dir / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a bundle ({existing}); pass overwrite=True to replace it")


def _export_onnx(
    model: nn.Module,
    spec: PolicySpec,
    work: Path,
    opset: int,
    *,
    embed_spec: PolicySpec | None = None,
    base: BaseBundleInfo | None = None,
    lyapunov: LyapunovInfo | None = None,
) -> tuple[bytes, int]:
    """Trace `model` to a single-file ONNX model with the spec in its metadata; returns (bytes, opset).

    A sampler gets a second input, `NOISE_NAME` `[batch, *noise_shape]`, and its sampler record in the metadata.
    `embed_spec` is the spec written into the metadata when it is not the traced one (a policy on a base bundle:
    traced on `[obs, proposal]`, deployed as the base's spec), and `base` that policy's base record. `lyapunov` is
    the record of the bundle's critic graph, embedded so the policy's hash pins the critic.
    """
    raw_path = work / "traced.onnx"
    noise_shape, sampler = _noise_of(model), _sampler_of(model)
    example: tuple[torch.Tensor, ...] = (torch.zeros(2, spec.obs_history * spec.observation.dim, dtype=torch.float32),)
    input_names = [INPUT_NAME]
    if noise_shape is not None:
        example += (torch.zeros(2, *noise_shape, dtype=torch.float32),)
        input_names.append(NOISE_NAME)
    proto = trace_to_proto(model, example, input_names, OUTPUT_NAME, raw_path, opset, "")
    props = {
        META_SPEC_KEY: json.dumps((embed_spec or spec).to_json(), sort_keys=True, allow_nan=False),
        META_FORMAT_KEY: str(FORMAT_VERSION),
    }
    if base is not None:
        props[META_BASE_KEY] = json.dumps(base.to_json(), sort_keys=True, allow_nan=False)
    if lyapunov is not None:
        props[META_LYAPUNOV_KEY] = json.dumps(lyapunov.record(), sort_keys=True, allow_nan=False)
    record = make_sampler_record(
        None if noise_shape is None else NOISE_NAME,
        None if noise_shape is None else (BATCH_DIM, *noise_shape),
        sampler,
    )
    if record is not None:
        props[META_SAMPLER_KEY] = json.dumps(record, sort_keys=True, allow_nan=False)
    onnx.helper.set_model_props(proto, props)
    proto.doc_string = "robot_rl deployable policy: raw observation -> physical action (deterministic)"
    if noise_shape is not None:
        proto.doc_string = (
            "robot_rl deployable sampler: raw observation history + initial noise -> physical action chunk "
            "(deterministic given the noise)"
        )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported ONNX model failed onnx.checker: {exc}") from exc
    model_bytes = proto.SerializeToString()
    scan = scan_onnx(model_bytes)
    if scan.external_tensors:
        raise ExportError(f"exported model keeps tensors in external data: {scan.external_tensors[:5]}")
    if scan.sampling_ops:
        raise ExportError(
            f"exported graph samples ({sorted(scan.sampling_ops)}); export the deterministic mean path "
            "(or pass noise as an explicit input)"
        )
    opsets = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    return model_bytes, int(opsets[0]) if opsets else opset


def _feeds(obs: FloatArray, noise: tuple[FloatArray, ...], rows: slice) -> dict[str, FloatArray]:
    feeds = {INPUT_NAME: obs[rows]}
    if noise:
        feeds[NOISE_NAME] = noise[0][rows]
    return feeds


def _run_onnx_batch(session: ort.InferenceSession, obs: FloatArray, *noise: FloatArray) -> FloatArray:
    """onnxruntime outputs for `obs [N, in_dim]` (and a sampler's `noise [N, *noise_shape]`), run in batches."""
    outs = [session.run([OUTPUT_NAME], _feeds(obs, noise, slice(i, i + _CHUNK)))[0] for i in range(0, len(obs), _CHUNK)]
    return np.concatenate(outs).astype(np.float32, copy=False)


def _run_onnx_single(session: ort.InferenceSession, obs: FloatArray, *noise: FloatArray) -> FloatArray:
    """onnxruntime outputs for `obs [N, in_dim]` (and noise), one row at a time (the robot's batch-1 kernels)."""
    return np.concatenate([session.run([OUTPUT_NAME], _feeds(obs, noise, slice(i, i + 1)))[0] for i in range(len(obs))])


def _out_of_bounds(spec: PolicySpec, actions: FloatArray) -> npt.NDArray[np.bool_]:
    """Per element of `actions [N, H * act_dim]` (a flattened chunk; H = 1 for a plain policy)."""
    width = actions.shape[1]
    slack = _tile_bounds(action_bound_slack(spec), width)
    low, high = _tile_bounds(spec.action.low_array, width), _tile_bounds(spec.action.high_array, width)
    return (actions < low - slack) | (actions > high + slack)


def _check_bounds(spec: PolicySpec, label: str, actions: FloatArray) -> None:
    outside = _out_of_bounds(spec, actions)
    if outside.any():
        i = int(np.flatnonzero(outside.any(axis=1))[0])
        raise ExportError(
            f"{label} actions leave the bounds low={list(spec.action.low)} high={list(spec.action.high)} "
            f"for {int(outside.any(axis=1).sum())} observations (first: {actions[i].tolist()})"
        )


def _ratio(num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """`num / den` elementwise, with x / 0 = 0 for x == 0 and inf otherwise (NaN stays NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: npt.NDArray[np.float64] = np.where(den > 0, num / den, np.where(num == 0, 0.0, np.inf))
    return out


def _float64_reference(
    model: nn.Module, obs: FloatArray, shape: tuple[int, ...], noise: FloatArray | None = None
) -> tuple[nn.Module, npt.NDArray[np.float64]] | str:
    """A float64 copy of `model` and its actions on `obs` (of `shape`, flattened to `[N, -1]`), or why there is none."""
    try:
        model64 = copy.deepcopy(model).double()
        with torch.inference_mode():
            noise64 = None if noise is None else torch.from_numpy(noise.astype(np.float64))
            out = _call(model64, torch.from_numpy(obs.astype(np.float64)), noise64)
    except Exception as exc:  # a custom module may hard-code float32 tensors or ops
        return f"float64 evaluation failed ({type(exc).__name__}: {exc})"
    if not isinstance(out, torch.Tensor) or out.dtype != torch.float64 or tuple(out.shape) != shape:
        return "float64 evaluation did not return float64 actions of the policy's shape"
    reference: npt.NDArray[np.float64] = out.detach().cpu().numpy().reshape(len(obs), -1)
    if not np.isfinite(reference).all():
        return "float64 evaluation returned non-finite actions"
    return model64, reference


def _torch_error_envelope(
    model: nn.Module,
    model64: nn.Module,
    obs: FloatArray,
    half_range: npt.NDArray[np.float64],
    noise: FloatArray | None = None,
) -> npt.NDArray[np.float64]:
    """Torch's float32 error around each row of `obs` `[n]`: max over float32-ulp neighbours x' of it.

    The error |torch32(x) - float64(x)| at one observation is a single draw of rounding noise: it can
    be 10x below its typical size by chance, and onnxruntime's error (another draw) then looks 10x
    worse although both kernels are equally accurate. Moving every coordinate by a few ulps keeps the
    function and its conditioning but reshuffles the rounding, so the max over `_N_NEIGHBOURS` such
    neighbours estimates the size of torch's float32 error there rather than one draw of it. A sampler keeps
    each row's noise fixed; only the observation moves.
    """
    rng = np.random.default_rng(0)
    base = obs.astype(np.float64)
    envelope = np.zeros(len(obs))
    for _ in range(_N_NEIGHBOURS):
        jitter = 1.0 + _F32_EPS * rng.uniform(-_NEIGHBOUR_ULPS, _NEIGHBOUR_ULPS, size=base.shape)
        neighbours = (base * jitter).astype(np.float32)
        for i in range(0, len(neighbours), _CHUNK):
            rows = neighbours[i : i + _CHUNK]
            rows_noise = None if noise is None else noise[i : i + _CHUNK]
            noise32 = None if rows_noise is None else torch.from_numpy(rows_noise)
            noise64 = None if rows_noise is None else torch.from_numpy(rows_noise.astype(np.float64))
            with torch.inference_mode():
                t32 = _call(model, torch.from_numpy(rows), noise32).detach().cpu().numpy().astype(np.float64)
                r64 = _call(model64, torch.from_numpy(rows.astype(np.float64)), noise64).detach().cpu().numpy()
            t32, r64 = t32.reshape(len(rows), -1), r64.reshape(len(rows), -1)
            err = np.abs(t32 - r64) / half_range
            err = np.where(np.isfinite(err), err, 0.0).max(axis=1)
            envelope[i : i + _CHUNK] = np.maximum(envelope[i : i + _CHUNK], err)
    return envelope


def _verify_parity(
    model: nn.Module,
    model_bytes: bytes,
    spec: PolicySpec,
    obs: FloatArray,
    n_boundary: int,
    tolerance: float,
    noise: FloatArray | None = None,
) -> tuple[dict[str, Any], FloatArray, FloatArray]:
    """Compare onnxruntime (batched and batch-1) with torch on `obs`; raise ExportError on any failure.

    Returns the parity record, onnxruntime's batched actions `[N, H * act_dim]` (a chunk flattened; H = 1 for a
    plain policy) and its batch-1 action for `obs[0]`. A sampler is compared on `obs` with the fixed
    `noise [N, *noise_shape]` (one draw per observation), every action of the chunk under the same rule.

    Differences are measured in normalized action units (|diff| / half-range of the bounds), so the
    tolerance means the same for ±1 rad and ±100 N*m actions: an absolute 1e-5 on a ±100 bound is
    below float32 resolution there. The allowance `allowed(m)` at input magnitude m (in normalizer
    std, or raw units without a normalizer) is `tolerance` up to `INPUT_SCALE_REF`; beyond it it grows
    linearly with m, because float32 rounding in the first layers does, with a floor of
    `OUT_OF_RANGE_MIN_ALLOWED`.

    An observation passes if either holds (`parity.criterion` = "float64-reference"):

    * |onnxruntime - torch| <= allowed(m): the literal parity bound; or
    * onnxruntime is as accurate as torch itself. A float64 copy of the module gives the reference
      `ref`; `err_onnx = |onnxruntime - ref|` (batched and batch-1), `err_torch = |torch - ref|`
      taken as its max over float32-ulp neighbours of the observation (`_torch_error_envelope`), and
      `err_onnx <= max(allowed(m), FLOAT64_FACTOR * err_torch + ~1e-6)`, never above the hard ceiling
      `PARITY_HARD_CEILING` (scaled with m beyond `INPUT_SCALE_REF` like the allowance), which
      |onnxruntime - torch| must respect too.

    Why the second: both runtimes compute in float32, in different summation orders. A network with
    large weights or pre-activations (a longer-trained policy) has torch itself off from the exact
    function by more than 1e-5; |onnxruntime - torch| then measures two rounding noises, not the
    export, and an absolute bound would refuse a correct bundle because training went on longer. A
    wrong normalizer, tanh, bias or weight changes the function computed, so onnxruntime's error
    against float64 exceeds torch's by far more than `FLOAT64_FACTOR` (for typical networks torch's
    error is ~1e-7 and the bound is the plain tolerance). If the module cannot be evaluated in
    float64, or that evaluation differs from float32 torch beyond the hard ceiling in range (a
    dtype-dependent module), only the first rule applies (`parity.criterion` = "torch-float32").
    """
    noise_t = None if noise is None else torch.from_numpy(noise)
    noise_args = () if noise is None else (noise,)
    with torch.inference_mode():
        expected = _call(model, torch.from_numpy(obs), noise_t).detach().cpu().numpy().astype(np.float32, copy=False)
    full_shape = (len(obs), spec.action.dim) if spec.chunk_size == 1 else (len(obs), spec.chunk_size, spec.action.dim)
    if expected.shape != full_shape:
        raise ExportError(f"torch policy returned shape {expected.shape} for {obs.shape} input, expected {full_shape}")
    expected = expected.reshape(len(obs), -1)
    want_shape = expected.shape
    bad = ~np.isfinite(expected).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ExportError(
            f"torch policy returns non-finite actions for {int(bad.sum())} of {len(obs)} parity observations "
            f"(first: index {i}, obs {obs[i].tolist()}, action {expected[i].tolist()})"
        )
    _check_bounds(spec, "torch", expected)  # an unsafe policy is refused whatever onnx does
    session = create_session(model_bytes)
    problem = signature_problem(
        session,
        INPUT_NAME,
        expected_input_shape(spec),
        OUTPUT_NAME,
        expected_output_shape(spec),
        noise_name=None if noise is None else NOISE_NAME,
        noise_shape=None if noise is None else (BATCH_DIM, *noise.shape[1:]),
    )
    if problem is not None:
        raise ExportError(f"exported model has the wrong signature: {problem}")
    got_batch = _run_onnx_batch(session, obs, *noise_args).reshape(len(obs), -1)
    got_single = _run_onnx_single(session, obs, *noise_args).reshape(len(obs), -1)
    for label, got in (("batched", got_batch), ("batch-1", got_single)):
        if got.shape != want_shape or not np.isfinite(got).all():
            raise ExportError(
                f"onnxruntime ({label}) returned shape {got.shape} or non-finite actions for finite observations"
            )
    half_range = _tile_bounds((spec.action.high_array.astype(np.float64) - spec.action.low_array) / 2.0, want_shape[1])
    diff_batch = np.abs(got_batch.astype(np.float64) - expected) / half_range
    diff_single = np.abs(got_single.astype(np.float64) - expected) / half_range
    diff_phys = np.maximum(np.abs(got_batch - expected), np.abs(got_single - expected)).max(axis=1)
    diff = np.maximum(diff_batch, diff_single).max(axis=1)  # [N], normalized action units
    magnitude = input_magnitude(model, obs)
    in_range = magnitude <= INPUT_SCALE_REF
    allowed = np.where(
        in_range, tolerance, np.maximum(tolerance * magnitude / INPUT_SCALE_REF, OUT_OF_RANGE_MIN_ALLOWED)
    )
    ceiling = np.maximum(allowed, PARITY_HARD_CEILING * np.maximum(1.0, magnitude / INPUT_SCALE_REF))
    max_in_range = float(diff[in_range].max()) if in_range.any() else 0.0
    within_tolerance = diff <= allowed
    fraction = _ratio(diff, allowed)

    float64: dict[str, Any] = {}
    reference = _float64_reference(model, obs, full_shape, noise)
    err_torch = err_onnx = envelope = np.zeros(len(obs))
    allowed64 = allowed
    if not isinstance(reference, str):
        model64, ref = reference
        err_torch = (np.abs(expected - ref) / half_range).max(axis=1)
        torch_in_range = float(err_torch[in_range].max()) if in_range.any() else 0.0
        if not torch_in_range <= PARITY_HARD_CEILING:
            reference = (
                f"float64 evaluation differs from float32 torch by {torch_in_range:.3g} on in-range observations "
                f"(> {PARITY_HARD_CEILING:g}): a dtype-dependent module or a badly conditioned network"
            )
    if isinstance(reference, str):
        criterion = CRITERION_TORCH32
        float64["float64_reference_problem"] = reference
    else:
        criterion = CRITERION_FLOAT64
        err_onnx = (np.maximum(np.abs(got_batch - ref), np.abs(got_single - ref)) / half_range).max(axis=1)
        envelope = err_torch.copy()
        suspect = ~within_tolerance & (err_onnx <= ceiling) & (diff <= ceiling)  # the rest pass or fail as is
        if suspect.any():
            around = _torch_error_envelope(
                model, model64, obs[suspect], half_range, None if noise is None else noise[suspect]
            )
            envelope[suspect] = np.maximum(envelope[suspect], around)
        allowed64 = np.minimum(np.maximum(allowed, FLOAT64_FACTOR * envelope + _SMALL_ABS), ceiling)
        fraction = np.minimum(fraction, np.maximum(_ratio(err_onnx, allowed64), _ratio(diff, ceiling)))
        beyond = ~within_tolerance  # the literal parity bound would refuse these
        by_factor = beyond & ~(err_onnx <= allowed)  # and onnxruntime is off from float64 beyond it too
        float64 = {
            "float64_factor": FLOAT64_FACTOR,
            "hard_ceiling": float(max(tolerance, PARITY_HARD_CEILING)),
            "max_err_onnx_vs_float64": float(err_onnx.max()),
            "max_err_torch_vs_float64": float(err_torch.max()),
            "max_err_onnx_vs_float64_in_range": float(err_onnx[in_range].max()) if in_range.any() else 0.0,
            "max_err_torch_vs_float64_in_range": torch_in_range,
            "n_beyond_tolerance": int(beyond.sum()),
            "n_accepted_by_factor": int(by_factor.sum()),
            "max_err_ratio_accepted_by_factor": float(_ratio(err_onnx[by_factor], envelope[by_factor]).max())
            if by_factor.any()
            else 0.0,
        }
    failing = ~(fraction <= 1.0)  # also catches NaN
    if failing.any():
        worst = int(np.argmax(np.where(failing, fraction, -np.inf)))
        if criterion == CRITERION_FLOAT64:
            why = (
                f"onnxruntime is {err_onnx[worst]:.3g} from a float64 evaluation, beyond the {allowed64[worst]:.3g} "
                f"allowed there ({FLOAT64_FACTOR:g}x torch's own float32 error {envelope[worst]:.3g}, hard ceiling "
                f"{ceiling[worst]:.3g})"
            )
        else:
            why = f"there is no float64 reference to judge it by ({float64['float64_reference_problem']})"
        raise ExportError(
            f"ONNX parity check failed: |onnxruntime - torch| = {diff[worst]:.3g} (normalized action "
            f"units) exceeds the allowed {allowed[worst]:.3g} at observation {worst} (input magnitude "
            f"{magnitude[worst]:.3g}) and {why}; {int(failing.sum())} of {len(obs)} observations fail; max "
            f"diff over in-range observations {max_in_range:.3g}, tolerance {tolerance:.3g} (batched max "
            f"{float(diff_batch.max()):.3g}, batch-1 max {float(diff_single.max()):.3g}); torch "
            f"{expected[worst].tolist()} vs onnxruntime "
            f"{got_batch[worst].tolist()}; bundle not written"
        )
    _check_bounds(spec, "onnxruntime", got_batch)
    _check_bounds(spec, "onnxruntime batch-1", got_single)
    width = want_shape[1]
    slack = _tile_bounds(action_bound_slack(spec), width)
    at_bound = (np.abs(expected - _tile_bounds(spec.action.low_array, width)) <= slack) | (
        np.abs(expected - _tile_bounds(spec.action.high_array, width)) <= slack
    )
    sampled: dict[str, Any] = {}
    if noise is not None:
        sampled = {"noise": "fixed N(0, 1) per observation (export seed)", "noise_shape": list(noise.shape[1:])}
    if spec.chunk_size > 1:
        sampled["actions_per_observation"] = spec.chunk_size
    report = {
        "n_samples": len(obs),
        "n_boundary": n_boundary,
        "n_random": len(obs) - n_boundary,
        "n_in_range": int(in_range.sum()),
        "n_saturated": int(at_bound.any(axis=1).sum()),
        "units": "normalized action (|diff| / half-range of the bounds)",
        "criterion": criterion,
        "max_abs_diff": max_in_range,
        "tolerance": float(tolerance),
        "input_scale_ref": INPUT_SCALE_REF,
        "max_abs_diff_all": float(diff.max()),
        "max_abs_diff_physical": float(diff_phys.max()),
        "max_fraction_of_allowed": float(fraction.max()),
        "max_abs_diff_batched": float(diff_batch.max()),
        "max_abs_diff_batch1": float(diff_single.max()),
        **float64,
        **sampled,
        "onnxruntime_version": str(ort.__version__),
        "torch_version": str(torch.__version__),
    }
    return report, got_batch, got_single[0]


def _remove_bundle(out_dir: Path) -> None:
    # Manifest first: without it the directory is no longer a valid bundle, whatever happens next.
    for name in (MANIFEST_FILE, ONNX_FILE, MODEL_CARD_FILE, LYAPUNOV_FILE):
        (out_dir / name).unlink(missing_ok=True)
    fsync_dir(out_dir)


def _install(work: Path, out_dir: Path, manifest: Manifest) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Invalidate an old bundle before replacing its model, so a crash never pairs an old manifest
    # with a new model file (the hash check would catch it, but the reason would be misleading).
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
    fsync_dir(out_dir)
    os.replace(work / ONNX_FILE, out_dir / ONNX_FILE)
    fsync_dir(out_dir)
    if sha256_file(out_dir / ONNX_FILE) != manifest.onnx_sha256:
        _remove_bundle(out_dir)
        raise ExportError(f"{out_dir / ONNX_FILE} does not hash to the exported bytes after the move")
    # The critic moves in before the manifest too; an older bundle's critic never outlives its manifest.
    critic = manifest.lyapunov
    if critic is None:
        (out_dir / LYAPUNOV_FILE).unlink(missing_ok=True)
    else:
        os.replace(work / critic.file, out_dir / critic.file)
        fsync_dir(out_dir)
        if sha256_file(out_dir / critic.file) != critic.onnx_sha256:
            _remove_bundle(out_dir)
            raise ExportError(f"{out_dir / critic.file} does not hash to the exported bytes after the move")
    atomic_write_text(out_dir / MODEL_CARD_FILE, render_model_card(manifest))
    write_manifest(out_dir, manifest)  # last: the valid marker


def _read_back(
    out_dir: Path,
    spec: PolicySpec,
    obs: FloatArray,
    verified_batch: FloatArray,
    verified_first: FloatArray,
    tolerance: float,
    noise: FloatArray | None = None,
    critic: CriticExport | None = None,
) -> None:
    """Load the written bundle like a robot would; its actions (and its critic's values) must equal the ones
    verified above."""
    plain = spec.chunk_size == 1 and spec.obs_history == 1 and noise is None
    try:
        loaded = OnnxPolicy.load(out_dir)
        if plain:
            got = loaded.act_batch(obs)
            got_first = loaded.act(obs[0])
        else:
            got = loaded.plan_batch(obs, noise).reshape(len(obs), -1)
            got_first = loaded.plan(obs[0], None if noise is None else noise[0]).reshape(-1)
        if critic is not None:
            values = np.array([loaded.lyapunov_value(o, a) for o, a in zip(critic.obs, critic.action, strict=True)])
    except (BundleError, ValueError, RuntimeError) as exc:
        _remove_bundle(out_dir)
        raise ExportError(f"written bundle failed to load back: {exc}") from exc
    if critic is not None:
        rel = np.abs(values - critic.value) / np.maximum(1.0, np.abs(critic.value.astype(np.float64)))
        if not float(rel.max()) <= CRITIC_TOLERANCE:
            _remove_bundle(out_dir)
            raise ExportError(
                f"written bundle's Lyapunov values differ from the verified ones by {rel.max():.3g} (rel)"
            )
    half_range = _tile_bounds((spec.action.high_array - spec.action.low_array) / 2.0, verified_batch.shape[1])
    diff = max(
        float((np.abs(got - verified_batch) / half_range).max()),
        float((np.abs(got_first - verified_first) / half_range).max()),
    )
    if not diff <= tolerance:
        _remove_bundle(out_dir)
        raise ExportError(f"written bundle's actions differ from the verified ones by {diff:.3g} > {tolerance:.3g}")


def export_policy(
    policy: DeployablePolicy,
    out_dir: str | os.PathLike[str],
    training_config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    n_parity: int = 10_000,
    tolerance: float = 1e-5,
    opset: int = 17,
    *,
    overwrite: bool = False,
    seed: int = 0,
    sampler_steps: int | None = None,
    lyapunov: LyapunovCertificate | None = None,
) -> Manifest:
    """Export `policy` (raw obs `[B, T_o*obs_dim]` (+ noise) → physical action `[B, act_dim]` or chunk
    `[B, H, act_dim]`) as a verified bundle.

    The policy is copied, moved to CPU and put in eval mode (the caller's module is untouched).

    Args:
        policy: a `DeployablePolicy` module (robot_rl/nets/deployable.py): a plain one (e.g. a TanhPolicy), or
            one on an observation history (`obs_history`), returning a chunk (`chunk_size`) or sampling from an
            explicit noise input (`noise_shape`; the graph input `noise`). A sampler's `sampler_kind` and
            `sampler_steps` are recorded in the manifest's `sampler`.
        out_dir: bundle directory to create (policy.onnx, README.md, manifest.json).
        training_config: algorithm/train config as JSON, stored in the manifest.
        extra: free JSON metadata for the manifest.
        n_parity: random observations in the parity check (boundary observations come on top).
        tolerance: max |onnxruntime - torch| (normalized action units) on in-range observations; beyond
            it onnxruntime may be off from a float64 evaluation by `FLOAT64_FACTOR` x torch's own
            float32 error, up to `PARITY_HARD_CEILING` (see `_verify_parity`).
        opset: ONNX opset to export with.
        overwrite: replace an existing bundle in `out_dir`.
        seed: seed of the parity observations (and of a sampler's fixed parity noise).
        sampler_steps: K to export a sampler with (None: the module's own `sampler_steps`). A different K needs
            the module's `with_steps(k)`, which must return the same weights sampling with K steps.
        lyapunov: the learner's Lyapunov critic (`robot_rl.nets.certificate.certificate_of`), written as the
            bundle's `lyapunov.onnx` after its own parity check (`robot_rl.export.certificate`); plain policies only.

    Raises:
        ExportError: non-finite weights, failed parity, non-finite or out-of-bounds actions,
            sampling ops or external data; `out_dir` then holds no new bundle.
        FileExistsError: `out_dir` already holds a bundle and `overwrite` is False.
        ValueError: invalid arguments or non-JSON configs.
    """
    if n_parity < 1:
        raise ValueError(f"n_parity must be >= 1, got {n_parity}")
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance}")
    training_config = dict(training_config)
    extra = dict(extra or {})
    for label, value in (("training_config", training_config), ("extra", extra)):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{label} must be JSON-serializable (no NaN/Inf): {exc}") from exc
    out_dir = Path(out_dir)
    _check_destination(out_dir, overwrite)
    module = _with_steps(as_module(policy), sampler_steps)
    spec = _check_policy(module)
    model = copy.deepcopy(module).to("cpu").eval()
    for param in model.parameters():
        param.requires_grad_(False)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Work next to out_dir so the final moves are same-filesystem renames.
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-", dir=out_dir.parent))
    try:
        obs, n_boundary = parity_observations(model, spec, n_parity, seed)
        # The critic first: the policy graph embeds its record (file, sha256, α₃), so the policy's hash pins it.
        critic = None if lyapunov is None else export_critic(lyapunov, model, spec, obs, work, opset, seed=seed)
        if critic is None:  # the plain call, as before (tests substitute this function with its 4-argument form)
            model_bytes, opset_used = _export_onnx(model, spec, work, opset)
        else:
            model_bytes, opset_used = _export_onnx(model, spec, work, opset, lyapunov=critic.info)
        noise_shape = _noise_of(model)
        noise = None if noise_shape is None else parity_noise(noise_shape, len(obs), seed)
        parity, verified_batch, verified_first = _verify_parity(
            model, model_bytes, spec, obs, n_boundary, tolerance, noise
        )
        atomic_write_bytes(work / ONNX_FILE, model_bytes)
        manifest = Manifest(
            policy_spec=spec,
            onnx_sha256=sha256_bytes(model_bytes),
            onnx_opset=opset_used,
            input_shape=expected_input_shape(spec),
            output_shape=expected_output_shape(spec),
            created_utc=utc_now_iso(),
            source_revision=source_revision(),
            training_config=training_config,
            parity=parity,
            extra=extra,
            noise_name=None if noise_shape is None else NOISE_NAME,
            noise_shape=None if noise_shape is None else (BATCH_DIM, *noise_shape),
            sampler=_sampler_of(model),
            lyapunov=None if critic is None else critic.info,
        )
        _check_destination(out_dir, overwrite)  # again: another process may have written meanwhile
        _install(work, out_dir, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n_back = min(len(obs), 256)
    _read_back(
        out_dir,
        spec,
        obs[:n_back],
        verified_batch[:n_back],
        verified_first,
        tolerance,
        None if noise is None else noise[:n_back],
        critic,
    )
    return manifest


def _with_steps(module: nn.Module, steps: int | None) -> nn.Module:
    """`module` sampling with K = `steps` (None or its own K: itself; otherwise `module.with_steps(steps)`)."""
    if steps is None:
        return module
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"sampler_steps must be a positive integer, got {steps!r}")
    own = getattr(module, "sampler_steps", None)
    if own == steps:
        return module
    with_steps = getattr(module, "with_steps", None)
    if not callable(with_steps):
        raise ValueError(
            f"{type(module).__name__} samples with {own} steps and has no with_steps(k): cannot export K={steps}"
        )
    variant = as_module(with_steps(steps))
    if getattr(variant, "sampler_steps", None) != steps:
        raise ValueError(
            f"{type(module).__name__}.with_steps({steps}) returned a module with sampler_steps "
            f"{getattr(variant, 'sampler_steps', None)}"
        )
    return variant


def export_sampler_variants(
    policy: DeployablePolicy,
    out_root: str | os.PathLike[str],
    steps: Sequence[int],
    training_config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[int, Manifest]:
    """Export one verified bundle per sampler step count K into `out_root/k{K}` (same weights, same spec).

    Each bundle is checked on its own (parity per K, with the same fixed noise). `kwargs` go to `export_policy`
    (n_parity, tolerance, opset, overwrite, seed). Returns the manifests by K.

    Raises:
        ValueError: `steps` is empty or repeats a K, or the module cannot change its K (no `with_steps`).
        ExportError: a variant failed its checks (the variants exported before it stay valid bundles).
    """
    wanted = list(steps)
    if not wanted or len(set(wanted)) != len(wanted):
        raise ValueError(f"steps must list distinct step counts, got {wanted}")
    root = Path(out_root)
    return {
        k: export_policy(
            policy,
            root / f"k{k}",
            training_config,
            {**dict(extra or {}), "sampler_steps": k},
            sampler_steps=k,
            **kwargs,
        )
        for k in wanted
    }
