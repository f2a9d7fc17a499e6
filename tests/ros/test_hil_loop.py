"""The human-in-the-loop loop over DDS on loopback (issue 15): the simulated robot, the policy node streaming its
steps and hot-swapping, and the learner node training a residual on the deployed bundle. The learner receives
every step (no loss), exports a verified composite bundle, announces it, and the policy node adopts it at an
episode start; the episodes after the swap name the learner's bundle. (The learner shares this test's process and
its GIL, so the control loop's timing is not judged here: bench/hil_push.py runs each node in its own process.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosutil import ros_context, spin_until  # noqa: E402

from robot_rl.data.mcap_reader import list_episodes, read_episode  # noqa: E402
from ros_nodes.learner_node import LearnerNode  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.sim_robot_node import SimRobotNode  # noqa: E402

REACH = "robot_rl/PandaReach-v0"
STEPS, BUNDLES = "/robot_rl/steps", "/robot_rl/learner/bundle"
SMALL = {"actor_hidden": [32, 32], "critic_hidden": [32, 32], "batch_size": 32}


def _params(**kw: Any) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in kw.items()]


def test_the_learner_trains_on_the_streamed_steps_and_the_node_swaps_its_bundle_in(
    ros_env: int, reach_bundle: Path, tmp_path: Path
) -> None:
    record, run = tmp_path / "episodes", tmp_path / "learner"
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(context=ctx, parameter_overrides=_params(env_id=REACH))
        node = PolicyNode(
            context=ctx,
            parameter_overrides=_params(
                bundle_dir=str(reach_bundle),
                step_stream_topic=STEPS,
                bundle_announce_topic=BUNDLES,
                episode_steps=15,
                record_dir=str(record),
            ),
        )
        learner = LearnerNode(
            context=ctx,
            parameter_overrides=_params(
                run_dir=str(run),
                base=str(reach_bundle),
                env=REACH,
                algo_config=json.dumps(SMALL),
                learning_starts=30,
                export_every_updates=40,
                checkpoint_every_updates=40,
                parity_samples=500,
                updates_per_slice=10,
            ),
        )
        for n in (robot, node, learner):
            executor.add_node(n)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node._last_error
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, node._last_error
        swapper = node._swapper
        assert swapper is not None
        first = swapper.active_sha256

        def swapped() -> bool:
            return learner.service.exports >= 1 and swapper.active_sha256 != first

        assert spin_until(executor, swapped, timeout_s=90.0), (learner.service.stats(), swapper.stats())
        announced = learner.service.latest
        assert announced is not None and swapper.active_sha256 == announced.onnx_sha256
        # two more episodes on the learner's bundle, then stop
        done = len(node.episodes)
        assert spin_until(executor, lambda: len(node.episodes) >= done + 2, timeout_s=30.0)
        node.trigger_deactivate()
        summary = node.loop_summary()
        stats = learner.service.stats()
        learned = {a["sha256"] for a in learner.learner.announced}
        learner.shutdown()

    # the learner got every step the node streamed, in order; nothing was malformed
    assert summary["step_stream"]["dropped"] == 0 and summary["step_stream"]["errors"] == 0
    assert stats["sequence/lost"] == 0 and stats["malformed"] == 0 and stats["episodes_complete"] >= 3
    # episodes recorded after the swap name the learner's bundle; the ones before, the deployed one
    # (the learner may have announced, and the node adopted, more bundles since the first swap)
    shas = [read_episode(p).metadata["policy_sha256"] for p in list_episodes(record)]
    assert shas[0] == first and shas[-1] in learned
    switch = shas.index(announced.onnx_sha256)
    assert all(s == first for s in shas[:switch]) and all(s in learned for s in shas[switch:])
    # the learner's run resumes from its checkpoint (a fresh start on the same folder is refused)
    assert (run / "checkpoints" / "latest").exists() and (run / "bundles").is_dir()
