"""Exporting a run whose base cannot join its graph: a residual on a bundle base or on a training-run base that is
chunked, on an observation history or a sampler (state between steps and seeded noise that one stateless graph
cannot hold), and DSRL on a bundle base. The result is one bundle directory: the learner's graph (the residual on
`[obs, proposal]`, or the noise actor) plus the base as its own verified bundle in `base/`, pinned by sha256
(`robot_rl.export.base_export`). A run base is exported first (its own parity check), a bundle base is copied as
it is after checking it is still the one the run trained on.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from robot_rl.core.specs import PolicySpec
from robot_rl.export.manifest import Manifest, read_manifest
from robot_rl.residual.base import BaseError, bundle_identity, check_same_base, run_identity


def recorded_base(run_dir: Path) -> dict[str, Any] | None:
    """The base a run recorded (`config.json["base"]`), or None for a run without one."""
    config_file = run_dir / "config.json"
    if not config_file.exists():
        return None
    base = json.loads(config_file.read_text()).get("base")
    return base if isinstance(base, dict) else None


def needs_base_bundle(recorded: dict[str, Any] | None) -> bool:
    """Whether a run on the `recorded` base exports as a bundle on a base bundle (rather than one graph): a residual
    (proposal view) or DSRL (noise view) on a bundle base, or a residual on a run base whose policy is not plain."""
    if recorded is None or recorded.get("view") not in ("proposal", "noise"):
        return False
    if recorded.get("kind") == "bundle":
        return True
    if recorded.get("view") == "noise":  # DSRL on a run: noise actor and sampler in one graph
        return False
    if recorded.get("kind") != "run":
        return False
    from robot_rl.train.from_run import load_run_policy

    policy = load_run_policy(Path(str(recorded["ref"]))).policy
    return not (policy.obs_history == 1 and policy.chunk_size == 1 and policy.noise_shape is None)


def _deploy_spec(base_spec: PolicySpec, backend: str, feeds: str) -> PolicySpec:
    """The base's spec, its robot interface naming the run's engine (a base fine-tuned in the other simulator); a
    residual's is plain (one observation in, one action out: the base keeps its own history and chunk queue)."""
    spec = base_spec
    if feeds == "proposal":
        spec = dataclasses.replace(base_spec, chunk_size=1, execution_horizon=0, obs_history=1)
    robot = spec.robot
    if backend and robot is not None and robot.backend != backend:
        return dataclasses.replace(spec, robot=dataclasses.replace(robot, backend=backend))
    return spec


def export_run_on_base_bundle(
    run_dir: Path, out: Path, overwrite: bool = False, parity_samples: int = 10_000
) -> Manifest:
    """Export the residual or DSRL run `run_dir` with its base as the bundle `out` (see the module docstring).

    Raises:
        BaseError: the base changed since the run recorded it, or is a scripted expert.
        ExportError / BundleError: a parity or end-to-end check failed, or the base bundle is invalid.
    """
    from robot_rl.export.base_export import export_on_base_bundle
    from robot_rl.export.onnx_export import export_policy
    from robot_rl.train.from_run import load_run_policy

    recorded = recorded_base(run_dir)
    if recorded is None:
        raise BaseError(f"{run_dir} was not trained on a base")
    residual = load_run_policy(run_dir, compose=False)
    backend = str(residual.config.get("train", {}).get("backend", ""))
    extra = {"run_dir": str(run_dir), "checkpoint": residual.checkpoint.name, "training_summary": residual.summary}
    extra["base"] = {k: recorded.get(k) for k in ("ref", "kind", "identity")}
    ref = Path(str(recorded.get("ref", "")))
    with tempfile.TemporaryDirectory(prefix="residual-base-") as tmp:
        if recorded.get("kind") == "bundle":
            check_same_base(recorded, bundle_identity(read_manifest(ref).onnx_sha256))
            base_dir = ref
        elif recorded.get("kind") == "run":
            base_run = load_run_policy(ref)
            check_same_base(recorded, run_identity(base_run.checkpoint))
            base_dir = Path(tmp) / "base"
            base_extra = {"run_dir": str(ref), "checkpoint": base_run.checkpoint.name}
            export_policy(
                base_run.policy, base_dir, training_config=base_run.config, extra=base_extra, n_parity=parity_samples
            )
        else:
            raise BaseError(f"a run on a {recorded.get('kind')} base cannot be exported (the base is simulator code)")
        feeds = "noise" if recorded.get("view") == "noise" else "proposal"
        deploy_spec = _deploy_spec(read_manifest(base_dir).policy_spec, backend, feeds)
        return export_on_base_bundle(
            residual.policy,
            base_dir,
            out,
            deploy_spec,
            training_config=residual.config,
            extra=extra,
            n_parity=parity_samples,
            feeds=feeds,
            overwrite=overwrite,
        )
