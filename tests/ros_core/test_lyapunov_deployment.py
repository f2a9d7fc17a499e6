"""`build_deployment` wires the safety chain's `lyapunov` monitor to the bundle's own critic (a LAC bundle) and
verifies the fallback bundle like the main one; ticks run on a fake clock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_rl.export.errors import BundleError
from robot_rl.export.manifest import MANIFEST_FILE
from robot_rl.export.signing import generate_key, sign_bundle
from robot_rl.safety.config import DEFAULT_LINKS
from robot_rl.safety.links.lyapunov import LyapunovLink
from ros_nodes.core.deployment import build_deployment
from ros_nodes.core.lyapunov_deploy import NEEDS_CRITIC

CART_JOINTS = ["slider_to_cart", "cart_to_pole"]
PERIOD = 0.02
LINKS = [*DEFAULT_LINKS, "lyapunov"]


def _params(bundle: Path, **monitor: Any) -> dict[str, Any]:
    # Flat `safety.lyapunov.<param>` keys, as rclpy hands nested YAML parameters to the node.
    return {
        "bundle_dir": str(bundle),
        "safety.links": LINKS,
        **{f"safety.lyapunov.{k}": v for k, v in monitor.items()},
    }


def test_the_monitor_is_fed_by_the_bundles_critic(lac_cartpole_bundle: Path) -> None:
    dep = build_deployment(_params(lac_cartpole_bundle, consecutive_ticks=3, on_violation="report"))
    step = dep.step
    link = step.monitor
    assert isinstance(link, LyapunovLink) and link.monitor.consecutive_ticks == 3 and dep.fallback is None
    step.reset()
    for i in range(5):
        t = i * PERIOD
        step.assembler.update_joint_state(CART_JOINTS[::-1], [0.05, 0.01 * i], [0.0, 0.0], arrival_s=t)
        record = step.tick(t)
        assert record.source == "policy"
    assert link.fed == 5 and step.lyapunov_errors == 0
    obs = step.assembler.assemble()
    assert obs is not None
    assert link.last_value == pytest.approx(dep.policy.lyapunov_value(obs, record.policy_action), rel=1e-6)


def test_a_bundle_without_a_critic_is_refused(cartpole_lqr_bundle: Path) -> None:
    with pytest.raises(BundleError, match=NEEDS_CRITIC.replace("(", r"\(").replace(")", r"\)")):
        build_deployment(_params(cartpole_lqr_bundle))
    assert (
        build_deployment({"bundle_dir": str(cartpole_lqr_bundle)}).step.monitor is None
    )  # without the link: as before


def test_fallback_loads_a_verified_bundle_of_the_same_robot(
    lac_cartpole_bundle: Path, cartpole_lqr_bundle: Path
) -> None:
    dep = build_deployment(
        _params(lac_cartpole_bundle, on_violation="fallback", fallback_bundle=str(cartpole_lqr_bundle))
    )
    assert dep.fallback is not None and dep.fallback.manifest.onnx_sha256 != dep.policy.manifest.onnx_sha256
    assert dep.step._fallback is not None


def test_fallback_of_another_robot_is_refused(lac_cartpole_bundle: Path, reach_bundle: Path) -> None:
    params = _params(lac_cartpole_bundle, on_violation="fallback", fallback_bundle=str(reach_bundle))
    with pytest.raises(BundleError, match=r"lyapunov\.fallback_bundle .* does not fit .*trained for robot"):
        build_deployment(params)


def test_a_tampered_fallback_is_refused(lac_cartpole_bundle: Path, cartpole_lqr_bundle: Path, tmp_path: Path) -> None:
    fallback = tmp_path / "fallback"
    shutil.copytree(cartpole_lqr_bundle, fallback)
    manifest = json.loads((fallback / MANIFEST_FILE).read_text())
    manifest["onnx_sha256"] = "0" * 64
    (fallback / MANIFEST_FILE).write_text(json.dumps(manifest))
    params = _params(lac_cartpole_bundle, on_violation="fallback", fallback_bundle=str(fallback))
    with pytest.raises(BundleError, match=r"lyapunov\.fallback_bundle .* was refused: sha256 mismatch"):
        build_deployment(params)


def test_a_node_with_trusted_keys_needs_a_signed_fallback(
    lac_cartpole_bundle: Path, cartpole_lqr_bundle: Path, tmp_path: Path
) -> None:
    private, public, _ = generate_key(tmp_path / "lab.pem")
    main, fallback = tmp_path / "main", tmp_path / "fallback"
    shutil.copytree(lac_cartpole_bundle, main)
    shutil.copytree(cartpole_lqr_bundle, fallback)
    sign_bundle(main, private)
    params = {
        **_params(main, on_violation="fallback", fallback_bundle=str(fallback)),
        "trusted_keys": [str(public)],
    }
    with pytest.raises(BundleError, match=r"lyapunov\.fallback_bundle .* was refused: .*signature"):
        build_deployment(params)
    sign_bundle(fallback, private)
    assert build_deployment(params).fallback is not None


def test_the_critic_rejects_bad_inputs(lac_cartpole_bundle: Path) -> None:
    dep = build_deployment(_params(lac_cartpole_bundle))
    with pytest.raises(ValueError, match="not finite"):
        dep.policy.lyapunov_value(np.array([np.nan, 0, 0, 0]), np.zeros(1))
    with pytest.raises(ValueError, match="action has shape"):
        dep.policy.lyapunov_value(np.zeros(4), np.zeros(2))
