"""What an announced bundle must pass to replace the running one (hot swap, `ros_nodes/core/bundle_swap.py`):
every check configure runs on a bundle, the announced sha256, and a fit with the running control step; and the
episode metadata of an episode a swapped-in bundle runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from robot_rl.export.errors import BundleError
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.hil.announcement import BundleAnnouncement
from ros_nodes.core.deployment import CheckedBundle, Deployment, check_bundle


def swap_metadata(base: Mapping[str, str], policy: OnnxPolicy, origin: str) -> dict[str, str]:
    """Episode metadata (`Deployment.episode_metadata`) for an episode run by `policy`, a swapped-in bundle:
    its sha256, directory and spec replace the configured bundle's, and `policy_origin` says where it came from
    ("configured", "<run_id>@<training_step>", "... (rolled back to)")."""
    return {
        **base,
        "policy_sha256": policy.manifest.onnx_sha256,
        "policy_bundle": str(Path(policy.bundle_dir).resolve()),
        "policy_spec": json.dumps(policy.spec.to_json(), sort_keys=True),
        "policy_origin": origin,
    }


# ----- the node's verifier -----
def deployment_verifier(
    dep: Deployment, safety_overrides: Mapping[str, Any], accept_unsigned_when_pinned: bool = False
) -> Callable[[BundleAnnouncement], OnnxPolicy]:
    """The checks an announced bundle must pass to replace `dep`'s running bundle: every check configure runs on a
    bundle (`check_bundle` with the node's parameters), the announced sha256, and a fit with the running
    deployment (`fit_problem`).

    Args:
        dep: what configure built.
        safety_overrides: the node's `safety.*` parameters (`deployment.safety_params`).
        accept_unsigned_when_pinned: a deployment pinned by `expected_sha256` without `trusted_keys` accepts
            announced bundles (`BundleSwapConfig.accept_unsigned_when_pinned`).
    """

    def verify(announcement: BundleAnnouncement) -> OnnxPolicy:
        if dep.step.monitor is not None:
            raise BundleError(
                "hot swap is off while the safety chain has the 'lyapunov' monitor link: its critic and fallback "
                "belong to the configured bundle"
            )
        if dep.pinned and not dep.config.trusted_keys and not accept_unsigned_when_pinned:
            raise BundleError(
                "this deployment pins expected_sha256 and sets no trusted_keys, so an announced bundle cannot be "
                "authenticated: sign the learner's exports and set trusted_keys (or leave expected_sha256 empty)"
            )
        checked = check_bundle(announcement.bundle_dir, dep.config, safety_overrides, control_hz=dep.control_hz)
        sha = checked.policy.manifest.onnx_sha256
        if sha != announcement.onnx_sha256:
            raise BundleError(
                f"announced sha256 {announcement.onnx_sha256} but the bundle's model is {sha} "
                "(a different or modified bundle)"
            )
        problem = fit_problem(dep, checked)
        if problem:
            raise BundleError(f"it does not fit the running deployment: {problem}")
        return checked.policy

    return verify


def fit_problem(dep: Deployment, candidate: CheckedBundle) -> str:
    """Why `candidate` cannot replace `dep`'s bundle under the same control step, or "": it must have the same
    robot interface (robot, measured joints, command interface), observation layout, action spec, control rate,
    chunking (H, T_o, H_a) and the same safety limits as the chain in force."""
    ours, theirs = dep.robot, candidate.robot
    if theirs.robot != ours.robot:
        return f"it was trained for robot {theirs.robot!r}, the running bundle for {ours.robot!r}"
    if theirs.joint_names != ours.joint_names:
        return f"it measures joints {list(theirs.joint_names)}, the running bundle {list(ours.joint_names)}"
    for f in fields(ours.command):
        a, b = getattr(theirs.command, f.name), getattr(ours.command, f.name)
        if a != b:
            return f"its command interface {f.name} is {a!r}, the running bundle's {b!r}"
    if candidate.layout != dep.step.assembler.layout:
        return f"its observation layout {candidate.layout} differs from the running {dep.step.assembler.layout}"
    spec, running = candidate.policy.spec, dep.policy.spec
    if spec.action != running.action:
        return f"its action spec {spec.action} differs from the running bundle's {running.action}"
    for name in ("control_hz", "chunk_size", "obs_history", "execution_horizon"):
        a, b = getattr(spec, name), getattr(running, name)
        if a != b:
            return f"its {name} is {a}, the running bundle's {b}"
    if candidate.safety.sha256() != dep.safety_config.sha256():
        new, old = candidate.safety.to_json(), dep.safety_config.to_json()
        differ = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
        return f"its safety limits differ from the chain in force in {differ} (from its manifest)"
    return ""
