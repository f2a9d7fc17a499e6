"""Export a policy that runs on top of a frozen base bundle: the base stays its own verified bundle (kept in the
bundle's `base/` directory, pinned by sha256), the policy's graph feeds it (`BaseBundleInfo.feeds`):

- `proposal`: a residual trained on a bundle base, or on a chunked or sampler base (state between steps, its own
  seeded noise: nothing one stateless graph can hold). The graph takes `[obs, proposal]`; the bundle is a plain
  policy.
- `noise`: a DSRL noise actor on a sampler bundle. The graph maps the observation history to the base's initial
  noise; the bundle is the base's chunked policy without a noise input.

`OnnxPolicy.load` verifies both graphs, refuses a base whose sha256 differs from the recorded one, and runs them as
one policy (`robot_rl.export.runtime`); the node needs no special casing.

Checks, like every export: the graph's parity with the torch policy on `n_parity` observations (boundary rows
included, `onnx_export._verify_parity`'s rule), then an end-to-end check of the written bundle against the base
bundle plus the torch policy, within the tolerance: for `proposal` step by step over `n_parity` observations in
episodes (the base's history, chunk queue and seeded noise included), for `noise` the chunks planned for `n_parity`
observation histories.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.core.specs import PolicySpec
from robot_rl.export.errors import BundleError, ExportError
from robot_rl.export.manifest import (
    BATCH_DIM,
    MANIFEST_FILE,
    MODEL_CARD_FILE,
    ONNX_FILE,
    BaseBundleInfo,
    Manifest,
    atomic_write_bytes,
    atomic_write_text,
    expected_input_shape,
    expected_output_shape,
    fsync_dir,
    sha256_bytes,
    source_revision,
    utc_now_iso,
    write_manifest,
)
from robot_rl.export.model_card import render_model_card
from robot_rl.export.onnx_export import (
    _check_policy,
    _export_onnx,
    _normalizer_stats,
    _verify_parity,
    parity_observations,
)
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.nets.deployable import DeployablePolicy, as_module

BASE_DIR = "base"
"""Where the base bundle lives inside the bundle directory."""
EPISODE_STEPS = 100
"""Episode length of the end-to-end check (the base is reset between episodes, as at run time)."""


def export_on_base_bundle(
    policy: DeployablePolicy,
    base_bundle: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    deploy_spec: PolicySpec,
    training_config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    n_parity: int = 10_000,
    tolerance: float = 1e-5,
    opset: int = 17,
    *,
    feeds: str = "proposal",
    overwrite: bool = False,
    seed: int = 0,
) -> Manifest:
    """Export `policy` on the bundle `base_bundle` as the bundle `out_dir`, deployed with `deploy_spec` (the base's
    observation and action spec and robot interface; plain for `proposal`, the base's chunking for `noise`).

    `feeds="proposal"`: `policy` maps `[obs, proposal]` `[B, O + A]` to the physical action `[B, A]`.
    `feeds="noise"`: `policy` maps the observation history `[B, T_o · O]` to the base's noise `[B, N]`.

    Raises:
        BundleError: `base_bundle` is not a valid bundle.
        ExportError: the policy does not fit the base, or a parity or end-to-end check failed (`out_dir` then
            holds no new bundle).
        FileExistsError: `out_dir` already holds a bundle and `overwrite` is False.
    """
    base_dir, out = Path(base_bundle), Path(out_dir)
    base = OnnxPolicy.load(base_dir)
    module = as_module(policy)
    traced_spec = _check_policy(module)
    problems = _misfits_proposal(traced_spec, base, deploy_spec) if feeds == "proposal" else []
    if feeds == "noise":
        problems = _misfits_noise(traced_spec, base, deploy_spec)
    if problems:
        raise ExportError(f"cannot export on base bundle {base_dir}: " + "; ".join(problems))
    if out.exists() and (out / MANIFEST_FILE).exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a bundle; pass overwrite=True to replace it")
    model = copy.deepcopy(module).to("cpu").eval()
    for param in model.parameters():
        param.requires_grad_(False)
    record = BaseBundleInfo(dir=BASE_DIR, onnx_sha256=base.manifest.onnx_sha256, feeds=feeds)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        model_bytes, opset_used = _export_onnx(model, traced_spec, work, opset, embed_spec=deploy_spec, base=record)
        obs, n_boundary = parity_observations(model, traced_spec, n_parity, seed)
        parity, _, _ = _verify_parity(model, model_bytes, traced_spec, obs, n_boundary, tolerance)
        atomic_write_bytes(work / ONNX_FILE, model_bytes)
        shutil.copytree(base_dir, work / BASE_DIR, ignore=shutil.ignore_patterns(".*"))
        manifest = Manifest(
            policy_spec=deploy_spec,
            onnx_sha256=sha256_bytes(model_bytes),
            onnx_opset=opset_used,
            input_shape=expected_input_shape(deploy_spec, on_base=feeds == "proposal"),
            output_shape=(
                expected_output_shape(deploy_spec) if feeds == "proposal" else (BATCH_DIM, traced_spec.action.dim)
            ),
            created_utc=utc_now_iso(),
            source_revision=source_revision(),
            training_config=dict(training_config),
            parity=parity,
            extra=dict(extra or {}),
            base=record,
        )
        write_manifest(work, manifest)  # provisional: lets the end-to-end check load the bundle like a robot
        check = end_to_end_check if feeds == "proposal" else end_to_end_noise_check
        e2e = check(work, model, n_parity, tolerance, seed)
        manifest = Manifest(**{**manifest.__dict__, "parity": {**parity, "end_to_end": e2e}})
        _install(work, out, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _misfits_proposal(traced: PolicySpec, base: OnnxPolicy, deploy: PolicySpec) -> list[str]:
    obs_dim, act_dim = base.obs_dim, base.act_dim
    problems = []
    if traced.observation.dim != obs_dim + act_dim:
        problems.append(
            f"the policy takes {traced.observation.dim} inputs, not observation {obs_dim} + proposal {act_dim}"
        )
    if traced.action != base.spec.action or deploy.action != base.spec.action:
        problems.append("the policy's, the base's and the deployed action spaces differ")
    if deploy.observation.dim != obs_dim:
        problems.append(f"the deployed spec takes {deploy.observation.dim} observations, the base {obs_dim}")
    if deploy.obs_history != 1 or deploy.chunk_size != 1:
        problems.append("the deployed spec must be plain (obs_history 1, chunk_size 1): the base keeps its own")
    if traced.obs_history != 1 or traced.chunk_size != 1:
        problems.append("the policy on the base must be plain (obs_history 1, chunk_size 1)")
    return problems


def _misfits_noise(traced: PolicySpec, base: OnnxPolicy, deploy: PolicySpec) -> list[str]:
    problems = []
    if base.noise_shape is None:
        return ["the base bundle has no noise input to steer"]
    if traced.observation.dim != base.obs_history * base.obs_dim:
        problems.append(
            f"the noise actor takes {traced.observation.dim} inputs, the base plans from a history of "
            f"{base.obs_history} x {base.obs_dim}"
        )
    if traced.action.dim != int(np.prod(base.noise_shape)) or traced.chunk_size != 1 or traced.obs_history != 1:
        problems.append(f"the noise actor chooses {traced.action.dim} values, the base takes noise {base.noise_shape}")
    if deploy.action != base.spec.action or deploy.observation.dim != base.obs_dim:
        problems.append("the deployed spec's observation or action differs from the base's")
    if (deploy.chunk_size, deploy.obs_history) != (base.spec.chunk_size, base.spec.obs_history):
        problems.append("the deployed spec must keep the base's chunk_size and obs_history")
    return problems


def end_to_end_check(
    bundle_dir: Path, model: torch.nn.Module, n_steps: int, tolerance: float, seed: int
) -> dict[str, Any]:
    """`OnnxPolicy` on the whole bundle vs the base bundle + the torch policy, step by step (see the module
    docstring); returns the record, raises ExportError beyond `tolerance` (normalized action units)."""
    try:
        loaded = OnnxPolicy.load(bundle_dir, seed=seed)
        reference = OnnxPolicy.load(bundle_dir / BASE_DIR, seed=seed)
    except BundleError as exc:
        raise ExportError(f"the bundle on its base failed to load back: {exc}") from exc
    spec = loaded.spec
    rng = np.random.default_rng(seed)
    obs = _observations(model, spec.observation.dim, n_steps, rng)
    half_range = (spec.action.high_array - spec.action.low_array) / 2.0
    worst = 0.0
    for i, o in enumerate(obs):
        if i % EPISODE_STEPS == 0:
            loaded.reset()
            reference.reset()
        got = loaded.act(o)
        proposal = np.clip(reference.spec.action.to_normalized(reference.act(o)), -1.0, 1.0).astype(np.float32)
        with torch.inference_mode():
            row = torch.from_numpy(np.concatenate([o, proposal])[None, :])
            want = model(row).numpy().reshape(-1)
        worst = max(worst, float((np.abs(got - want) / half_range).max()))
    if not worst <= tolerance:
        raise ExportError(
            "end-to-end check: the bundle on its base differs from base + torch policy by "
            f"{worst:.3g} > {tolerance:.3g}"
        )
    return {"n_steps": len(obs), "episode_steps": EPISODE_STEPS, "max_abs_diff": worst, "tolerance": tolerance}


def end_to_end_noise_check(
    bundle_dir: Path, model: torch.nn.Module, n_histories: int, tolerance: float, seed: int
) -> dict[str, Any]:
    """The chunks `OnnxPolicy` on the whole bundle plans for `n_histories` observation histories against the base
    bundle's chunks for the torch noise actor's noise (batched, and batch-1 for the first rows); raises ExportError
    beyond `tolerance` (normalized action units)."""
    try:
        loaded = OnnxPolicy.load(bundle_dir, seed=seed)
        reference = OnnxPolicy.load(bundle_dir / BASE_DIR, seed=seed)
    except BundleError as exc:
        raise ExportError(f"the bundle on its base failed to load back: {exc}") from exc
    assert reference.noise_shape is not None
    spec = loaded.spec
    hist = _observations(model, spec.obs_history * spec.observation.dim, n_histories, np.random.default_rng(seed))
    with torch.inference_mode():
        noise = model(torch.from_numpy(hist)).numpy().reshape(len(hist), *reference.noise_shape)
    want = reference.plan_batch(hist, noise)
    got = loaded.plan_batch(hist)
    single = np.stack([loaded.plan(h) for h in hist[:8]])
    half_range = (spec.action.high_array - spec.action.low_array) / 2.0
    worst = max(float((np.abs(got - want) / half_range).max()), float((np.abs(single - want[:8]) / half_range).max()))
    if not worst <= tolerance:
        raise ExportError(
            f"end-to-end check: the noise actor on its base differs from base + torch noise actor by {worst:.3g} > "
            f"{tolerance:.3g}"
        )
    return {"n_histories": len(hist), "max_abs_diff": worst, "tolerance": tolerance}


def _observations(model: torch.nn.Module, obs_dim: int, n: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Observations in the policy's operating region: N(mean, std) of the observation part of its normalizer when
    it has one, else N(0, 1) (the graph's float32 parity far outside it is the parity check's job)."""
    stats = _normalizer_stats(model)
    mean, std = (np.zeros(obs_dim), np.ones(obs_dim)) if stats is None else (stats[0][:obs_dim], stats[1][:obs_dim])
    out: npt.NDArray[np.float32] = (mean + std * rng.normal(size=(n, obs_dim))).astype(np.float32)
    return out


def _install(work: Path, out: Path, manifest: Manifest) -> None:
    """Move the checked bundle into `out`: old manifest removed first, base and model moved, manifest last."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    fsync_dir(out)
    if (out / BASE_DIR).exists():
        shutil.rmtree(out / BASE_DIR)
    os.replace(work / BASE_DIR, out / BASE_DIR)
    os.replace(work / ONNX_FILE, out / ONNX_FILE)
    fsync_dir(out)
    atomic_write_text(out / MODEL_CARD_FILE, render_model_card(manifest))
    write_manifest(out, manifest)
