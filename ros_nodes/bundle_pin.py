"""`robot-rl deploy` pins what it verified: each policy node gets the sha256 of the bundle bringup checked.

Without a pin the node accepts any bundle whose model matches its own manifest, and a bundle swapped (weights
changed, manifest re-hashed) after deploy started, or between two configure calls, would be accepted too. So
bringup loads the bundle the way the node will (same `expected_sha256` and `trusted_keys` parameters), then adds
one inline parameter source `{expected_sha256: <verified hash>}` after the node's others (the last source wins,
as in ros2 launch). ROS-free: `--dry-run` shows the pin without a ROS install.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ros_nodes.launch_subset import LaunchDescription, NodeSpec, ParamFile, _key_matches

PINNED_EXECUTABLES = frozenset({"policy_node"})
"""Executables that load a policy bundle (`bundle_dir`) and take `expected_sha256` / `trusted_keys`."""


def node_params(spec: NodeSpec) -> dict[str, Any]:
    """The node's top-level parameters as ROS will resolve them: its sources in order, the last one winning.

    Parameter files contribute the `ros__parameters` of every section whose key matches the node (`/**`,
    `/**/<name>`, `<name>`, `/<ns>/<name>`), in file order.
    """
    out: dict[str, Any] = {}
    for source in spec.params:
        if isinstance(source, ParamFile):
            doc = yaml.safe_load(Path(source.path).read_text()) or {}
            for key, section in doc.items() if isinstance(doc, dict) else ():
                if _key_matches(str(key), spec.name, spec.namespace) and isinstance(section, dict):
                    params = section.get("ros__parameters")
                    if isinstance(params, dict):
                        out.update(params)
        else:
            out.update(source)
    return out


def _keys(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value or ()]


def pin_node(spec: NodeSpec) -> tuple[NodeSpec, str]:
    """Verify the node's bundle as the node will and return (spec with the verified hash pinned, what was done).

    A node without `bundle_dir` is returned unchanged (its configure refuses it with the reason).

    Raises:
        BundleError: the bundle is missing, tampered, differs from a given `expected_sha256`, or is not signed by
            one of its `trusted_keys` (when any are set).
    """
    from robot_rl.export.runtime import OnnxPolicy  # numpy + onnxruntime: the robot side's own loader

    params = node_params(spec)
    bundle = str(params.get("bundle_dir") or "")
    if not bundle:
        return spec, f"{spec.fqn}: no bundle_dir, nothing to pin"
    given = str(params.get("expected_sha256") or "").strip()
    policy = OnnxPolicy.load(bundle, expected_sha256=given or None, trusted_keys=_keys(params.get("trusted_keys")))
    sha = policy.manifest.onnx_sha256
    signed = f", signed by key {policy.signer_key_id}" if policy.signer_key_id else ""
    pinned = dataclasses.replace(spec, params=(*spec.params, {"expected_sha256": sha}))
    return pinned, f"{spec.fqn}: verified {bundle} (sha256 {sha}{signed}); pinned expected_sha256"


def pin_bundles(desc: LaunchDescription) -> tuple[LaunchDescription, list[str]]:
    """`desc` with every enabled policy node pinned to the bundle hash verified now, and one line per node.

    Raises:
        BundleError: a policy node's bundle does not verify (see `pin_node`).
    """
    nodes: list[NodeSpec] = []
    notes: list[str] = []
    for spec in desc.nodes:
        if spec.enabled and spec.exec in PINNED_EXECUTABLES:
            spec, note = pin_node(spec)
            notes.append(note)
        nodes.append(spec)
    return dataclasses.replace(desc, nodes=tuple(nodes)), notes
