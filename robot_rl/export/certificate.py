"""Export a learner's Lyapunov critic as the bundle's second graph, `lyapunov.onnx`, verified like the policy.

The critic (`robot_rl.nets.certificate.LyapunovCertificate`: raw `obs [B, O]`, physical `action [B, A]` →
`L [B]` ≥ 0) is traced to a single-file, sampling-free graph with inputs `obs`, `action` and output `lyapunov`
(dynamic batch), then checked in onnxruntime (batched and batch-1) against torch on the policy's parity
observations, each paired with an action drawn uniformly inside the bounds, plus every bound corner (at the first
observations) and the policy's own action π(s) (what the node's monitor evaluates). It passes when
`|onnxruntime − torch| ≤ tolerance · max(1, |L|)` on every pair: L is a sum of squares in cost units whose scale
grows with the squared input, so an absolute bound would be below float32 resolution at the boundary rows (L ~ 1e9
there), while the floor of 1 keeps it the absolute 1e-5 where L is small. Anything else raises `ExportError` and
the caller writes no bundle.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.export.errors import ExportError
from robot_rl.export.manifest import (
    BATCH_DIM,
    FORMAT_VERSION,
    INPUT_NAME,
    LYAPUNOV_ACTION_NAME,
    LYAPUNOV_FILE,
    LYAPUNOV_OUTPUT_NAME,
    META_FORMAT_KEY,
    LyapunovInfo,
    atomic_write_bytes,
    sha256_bytes,
)
from robot_rl.export.onnx_scan import scan_onnx
from robot_rl.export.runtime import create_session, signature_problem
from robot_rl.export.tracing import trace_to_proto
from robot_rl.nets.certificate import LyapunovCertificate

FloatArray = npt.NDArray[np.float32]

CRITIC_TOLERANCE = 1e-5
"""Largest `|onnxruntime − torch| / max(1, |L|)` accepted on any (observation, action) pair."""
CORNER_OBSERVATIONS = 8
"""Observations each corner of the action box is paired with (the first parity rows: zeros and boundary rows)."""
MAX_CORNERS = 1024
"""Corners of the action box checked; with more than 10 action dimensions a seeded sample of this many."""
_ACTION_SEED_STREAM = 0x1A9
"""Added to the export seed for the parity actions, so they come from their own stream."""
_CHUNK = 4096


@dataclass(frozen=True)
class CriticExport:
    """A verified critic graph: its manifest record and rows to check the written bundle against."""

    info: LyapunovInfo
    """The manifest's `lyapunov` record (file, sha256, α₃, parity)."""
    model_bytes: bytes
    """The serialized graph (already written to the work directory as `LYAPUNOV_FILE`)."""
    obs: FloatArray
    """Read-back observations `[n, O]`."""
    action: FloatArray
    """Read-back physical actions `[n, A]`."""
    value: FloatArray
    """onnxruntime's verified `L [n]` for them."""


def critic_parity_inputs(
    policy: nn.Module, spec: PolicySpec, obs: FloatArray, seed: int = 0
) -> tuple[FloatArray, FloatArray]:
    """The (observation, physical action) pairs of the critic parity check: `obs [N, O]` (the policy's parity rows)
    each with a uniform action inside the bounds, the bound corners at the first `CORNER_OBSERVATIONS` rows, and
    every row with the policy's own action."""
    rng = np.random.default_rng(seed + _ACTION_SEED_STREAM)
    low, high = spec.action.low_array.astype(np.float64), spec.action.high_array.astype(np.float64)
    uniform = rng.uniform(low, high, size=(len(obs), len(low)))
    if len(low) <= 10:
        signs = np.array(list(itertools.product((0.0, 1.0), repeat=len(low))))
    else:
        signs = rng.integers(0, 2, size=(MAX_CORNERS, len(low))).astype(np.float64)
    corners = low + signs * (high - low)
    at = obs[:CORNER_OBSERVATIONS]
    corner_obs = np.repeat(at, len(corners), axis=0)
    corner_act = np.tile(corners, (len(at), 1))
    with torch.inference_mode():
        own = policy(torch.from_numpy(obs)).detach().cpu().numpy().reshape(len(obs), -1)
    rows_obs = np.concatenate([obs, corner_obs, obs]).astype(np.float32)
    rows_act = np.concatenate([uniform, corner_act, own]).astype(np.float32)
    return rows_obs, rows_act


def _check_module(module: nn.Module) -> None:
    with torch.no_grad():
        for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ExportError(f"Lyapunov critic tensor {name!r} has non-finite values; refusing to export")
    for name, param in module.named_parameters():
        if param.dtype != torch.float32:
            raise ExportError(f"Lyapunov critic parameter {name!r} is {param.dtype}; the bundle format is float32")


def _trace(model: nn.Module, spec: PolicySpec, work: Path, opset: int) -> bytes:
    """`model` as a single-file, sampling-free ONNX graph `obs`, `action` → `lyapunov` (dynamic batch)."""
    raw_path = work / "traced_lyapunov.onnx"
    example = (
        torch.zeros(2, spec.observation.dim, dtype=torch.float32),
        torch.zeros(2, spec.action.dim, dtype=torch.float32),
    )
    names = [INPUT_NAME, LYAPUNOV_ACTION_NAME]
    proto = trace_to_proto(model, example, names, LYAPUNOV_OUTPUT_NAME, raw_path, opset, " of the Lyapunov critic")
    onnx.helper.set_model_props(proto, {META_FORMAT_KEY: str(FORMAT_VERSION)})
    proto.doc_string = "robot_rl Lyapunov critic: raw observation + physical action -> L(s, a) >= 0"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported Lyapunov critic failed onnx.checker: {exc}") from exc
    model_bytes: bytes = proto.SerializeToString()
    scan = scan_onnx(model_bytes)
    if scan.external_tensors:
        raise ExportError(f"exported Lyapunov critic keeps tensors in external data: {scan.external_tensors[:5]}")
    if scan.sampling_ops:
        raise ExportError(f"exported Lyapunov critic samples ({sorted(scan.sampling_ops)})")
    return model_bytes


def _run(session: ort.InferenceSession, obs: FloatArray, action: FloatArray, step: int) -> FloatArray:
    outs = [
        session.run(
            [LYAPUNOV_OUTPUT_NAME], {INPUT_NAME: obs[i : i + step], LYAPUNOV_ACTION_NAME: action[i : i + step]}
        )[0]
        for i in range(0, len(obs), step)
    ]
    return np.concatenate(outs).astype(np.float32, copy=False).reshape(-1)


def verify_critic(
    model: nn.Module, model_bytes: bytes, spec: PolicySpec, obs: FloatArray, action: FloatArray, tolerance: float
) -> tuple[dict[str, Any], FloatArray]:
    """Compare onnxruntime (batched and batch-1) with torch on the pairs; returns the parity record and
    onnxruntime's batched values `[N]`. Raises ExportError on any failure (see the module docstring)."""
    with torch.inference_mode():
        expected = model(torch.from_numpy(obs), torch.from_numpy(action)).detach().cpu().numpy()
    if expected.shape != (len(obs),):
        raise ExportError(f"the Lyapunov critic returned shape {expected.shape} for {len(obs)} pairs, expected [N]")
    bad = ~np.isfinite(expected)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ExportError(
            f"the torch Lyapunov critic returns non-finite values for {int(bad.sum())} of {len(obs)} parity pairs "
            f"(first: obs {obs[i].tolist()}, action {action[i].tolist()})"
        )
    if (expected < 0).any():
        raise ExportError(
            f"the Lyapunov critic returns negative values (min {float(expected.min()):.3g}); L must be >= 0"
        )
    session = create_session(model_bytes)
    problem = signature_problem(
        session,
        INPUT_NAME,
        (BATCH_DIM, spec.observation.dim),
        LYAPUNOV_OUTPUT_NAME,
        (BATCH_DIM,),
        noise_name=LYAPUNOV_ACTION_NAME,
        noise_shape=(BATCH_DIM, spec.action.dim),
    )
    if problem is not None:
        raise ExportError(f"exported Lyapunov critic has the wrong signature: {problem}")
    got_batch = _run(session, obs, action, _CHUNK)
    got_single = _run(session, obs, action, 1)
    for label, got in (("batched", got_batch), ("batch-1", got_single)):
        if got.shape != expected.shape or not np.isfinite(got).all():
            raise ExportError(f"onnxruntime ({label}) returned shape {got.shape} or non-finite Lyapunov values")
    expected64 = expected.astype(np.float64)
    diff = np.maximum(np.abs(got_batch - expected64), np.abs(got_single - expected64))
    rel = diff / np.maximum(1.0, np.abs(expected64))
    worst = int(np.argmax(rel))
    if not rel[worst] <= tolerance:  # also catches NaN
        raise ExportError(
            f"Lyapunov critic parity check failed: |onnxruntime - torch| = {diff[worst]:.3g} > {tolerance:g} x "
            f"max(1, |L| = {abs(expected64[worst]):.3g}) at pair {worst} (obs {obs[worst].tolist()}, action "
            f"{action[worst].tolist()}); {int((rel > tolerance).sum())} of {len(obs)} pairs fail; bundle not written"
        )
    record = {
        "n_samples": len(obs),
        "units": "L (the critic's cost units); pass: |diff| <= tolerance * max(1, |L|)",
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(rel.max()),
        "tolerance": float(tolerance),
        "max_abs_diff_batched": float(np.abs(got_batch - expected64).max()),
        "max_abs_diff_batch1": float(np.abs(got_single - expected64).max()),
        "max_value": float(expected64.max()),
        "actions": "uniform in the bounds per observation, bound corners, the policy's own action",
        "onnxruntime_version": str(ort.__version__),
        "torch_version": str(torch.__version__),
    }
    return record, got_batch


def export_critic(
    certificate: LyapunovCertificate,
    policy: nn.Module,
    spec: PolicySpec,
    obs: FloatArray,
    work: Path,
    opset: int,
    *,
    seed: int = 0,
    tolerance: float = CRITIC_TOLERANCE,
    n_read_back: int = 256,
) -> CriticExport:
    """Trace, verify and write `work/lyapunov.onnx` for `certificate`, checked on the policy's parity
    observations `obs [N, O]` (see `critic_parity_inputs`); `policy` is the (eval, CPU) policy being exported.

    Raises:
        ExportError: a non-plain policy, non-finite or non-float32 weights, a bad trace, a wrong signature, a
            negative or non-finite L, or failed parity.
    """
    if spec.obs_history != 1 or spec.chunk_size != 1 or getattr(policy, "noise_shape", None) is not None:
        raise ExportError("a Lyapunov critic is exported with plain policies only (obs_history 1, chunk_size 1)")
    model = copy.deepcopy(certificate.module).to("cpu").eval()
    for param in model.parameters():
        param.requires_grad_(False)
    _check_module(model)
    model_bytes = _trace(model, spec, work, opset)
    pair_obs, pair_act = critic_parity_inputs(policy, spec, obs, seed)
    parity, values = verify_critic(model, model_bytes, spec, pair_obs, pair_act, tolerance)
    atomic_write_bytes(work / LYAPUNOV_FILE, model_bytes)
    info = LyapunovInfo(
        file=LYAPUNOV_FILE, onnx_sha256=sha256_bytes(model_bytes), alpha3=float(certificate.alpha3), parity=parity
    )
    n = min(n_read_back, len(pair_obs))
    return CriticExport(info, model_bytes, pair_obs[:n], pair_act[:n], values[:n])
