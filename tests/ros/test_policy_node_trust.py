"""The policy node says how its model was authenticated: an unpinned bundle runs but reports WARN "unpinned"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosutil import ros_context, spin_until  # noqa: E402

from robot_rl.export.manifest import ONNX_FILE, sha256_file  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402


def _model_status(params: dict[str, Any]) -> DiagnosticStatus:
    with ros_context() as (ctx, executor):
        policy = PolicyNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        probe = rclpy.create_node("probe", context=ctx)
        seen: list[DiagnosticStatus] = []
        probe.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m: seen.extend(s for s in m.status if s.name == "policy_node/model"),
            10,
        )
        executor.add_node(policy)
        executor.add_node(probe)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert spin_until(executor, lambda: bool(seen), 10.0)
        return seen[-1]


def test_unpinned_node_configures_and_reports_unpinned(ros_env: int, reach_bundle: Path) -> None:
    status = _model_status({"bundle_dir": str(reach_bundle)})
    assert status.level == DiagnosticStatus.WARN and status.message.startswith("unpinned")


def test_pinned_node_reports_ok_and_a_wrong_pin_is_refused(ros_env: int, reach_bundle: Path) -> None:
    sha = sha256_file(reach_bundle / ONNX_FILE)
    status = _model_status({"bundle_dir": str(reach_bundle), "expected_sha256": sha})
    assert status.level == DiagnosticStatus.OK and status.message.startswith(f"pinned sha256 {sha[:12]}")
    with ros_context() as (ctx, _executor):
        policy = PolicyNode(
            context=ctx,
            parameter_overrides=[
                Parameter("bundle_dir", value=str(reach_bundle)),
                Parameter("expected_sha256", value="0" * 64),
            ],
        )
        assert policy.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert "pinned" in policy._last_error
        policy.destroy_node()
