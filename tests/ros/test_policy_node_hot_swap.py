"""Hot swap over DDS on loopback (issue 15): a learner announces bundles on a latched topic, the policy node verifies
them off its control thread, adopts a good one at an episode start, refuses bad ones, rolls back on `~/rollback`,
reports it all on /diagnostics and names the running bundle in every recorded episode."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosutil import ros_context, spin_for, spin_until  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from robot_rl.data.mcap_reader import list_episodes, read_episode  # noqa: E402
from robot_rl.export.manifest import ONNX_FILE, sha256_file  # noqa: E402
from robot_rl.export.runtime import OnnxPolicy  # noqa: E402
from robot_rl.hil.announcement import BundleAnnouncement  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.sim_robot_node import SimRobotNode  # noqa: E402
from tests.conftest import _export_env_bundle  # noqa: E402

REACH = "robot_rl/PandaReach-v0"
TOPIC = "/robot_rl/bundle"
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
WAIT_S = 15.0


def _params(**kw: Any) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in kw.items()]


def _announce(bundle: Path, step: int) -> String:
    sha = sha256_file(bundle / ONNX_FILE)
    return String(data=BundleAnnouncement.now(str(bundle), sha, step, "hil-test", {"eval/success_rate": 0.5}).to_json())


def test_the_node_swaps_an_announced_bundle_at_an_episode_start_refuses_bad_ones_and_rolls_back(
    ros_env: int, reach_bundle: Path, tmp_path: Path
) -> None:
    new = _export_env_bundle(tmp_path / "new", REACH, seed=1)
    tampered = tmp_path / "tampered"
    shutil.copytree(new, tampered)
    data = bytearray((tampered / ONNX_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / ONNX_FILE).write_bytes(bytes(data))
    record = tmp_path / "episodes"
    original, swapped = sha256_file(reach_bundle / ONNX_FILE), sha256_file(new / ONNX_FILE)
    diagnostics: list[dict[str, str]] = []
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(context=ctx, parameter_overrides=_params(env_id=REACH))
        node = PolicyNode(
            context=ctx,
            parameter_overrides=_params(
                bundle_dir=str(reach_bundle), bundle_announce_topic=TOPIC, episode_steps=8, record_dir=str(record)
            ),
        )
        learner = rclpy.create_node("learner", context=ctx)
        announce = learner.create_publisher(String, TOPIC, LATCHED)
        rollback = learner.create_client(Trigger, "/policy_node/rollback")

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if status.name == "policy_node/bundle_swap":
                    diagnostics.append({kv.key: kv.value for kv in status.values})

        learner.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
        for n in (robot, node, learner):
            executor.add_node(n)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node._last_error
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, node._last_error
        swapper = node._swapper
        assert swapper is not None and rollback.wait_for_service(timeout_sec=5.0)

        def call_rollback() -> Trigger.Response:
            fut = rollback.call_async(Trigger.Request())
            assert spin_until(executor, fut.done, 5.0)
            return fut.result()

        first = call_rollback()
        assert not first.success and "no previous bundle" in first.message
        spin_for(executor, 0.5)  # a couple of episodes on the configured bundle
        announce.publish(String(data='{"format": 1, "bundle_dir": '))
        assert spin_until(executor, lambda: swapper.stats().malformed == 1, WAIT_S)
        announce.publish(_announce(tampered, 100))
        assert spin_until(executor, lambda: swapper.stats().refusals == 2, WAIT_S), swapper.stats()
        assert "sha256 mismatch" in swapper.stats().last_refusal and swapper.active_sha256 == original
        announce.publish(_announce(new, 200))
        assert spin_until(executor, lambda: swapper.stats().last_swap_latency_s is not None, WAIT_S), swapper.stats()
        assert swapper.active_sha256 == swapped and swapper.stats().swaps == 1
        spin_for(executor, 1.0)  # episodes on the new bundle
        answer = call_rollback()
        assert answer.success, answer.message
        assert spin_until(executor, lambda: swapper.stats().rollbacks == 1, WAIT_S)
        assert swapper.active_sha256 == original and swapper.stats().blocked == (swapped,)
        assert spin_until(executor, lambda: any(d.get("swap/rollbacks") == "1" for d in diagnostics), 5.0)
        spin_for(executor, 0.6)  # episodes on the configured bundle again
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        summary = node.loop_summary()
    assert summary["bundle_swap"]["swaps"] == 1 and summary["bundle_swap"]["refusals"] == 2
    assert summary["policy_errors"] == 0
    seen = [d for d in diagnostics if d.get("swap/swaps") == "1"]
    assert seen and seen[-1]["swap/active_sha256"] in (original, swapped)
    # Every recorded episode names the bundle that ran it, and every one of its actions came from that bundle:
    # the switch happened between episodes, never inside one.
    policies = {original: OnnxPolicy.load(reach_bundle), swapped: OnnxPolicy.load(new)}
    episodes = [read_episode(p) for p in list_episodes(record)]
    names = [ep.metadata["policy_sha256"] for ep in episodes]
    blocks = [sha for i, sha in enumerate(names) if i == 0 or names[i - 1] != sha]
    assert blocks == [original, swapped, original], names
    checked = 0
    for ep, sha in zip(episodes, names, strict=True):
        if sha == swapped:
            assert ep.metadata["policy_origin"] == "hil-test@200"
        rows = np.isfinite(ep.policy_actions).all(axis=1) & np.isfinite(ep.observations).all(axis=1)
        for obs, act in zip(ep.observations[rows], ep.policy_actions[rows], strict=True):
            np.testing.assert_allclose(act, policies[sha].act(obs.astype(np.float32)), atol=1e-5)
            checked += 1
    assert checked > 20
