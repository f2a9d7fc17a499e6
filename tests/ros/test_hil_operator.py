"""The operator that behaves like a person, over DDS on loopback: sim robot (expert topic on) + a weak policy + the
`hil_operator` node. The operator takes over when the policy drifts from the expert, the policy node records the
takeover's steps as interventions, the task recovers under the operator, and a stale expert stream lets go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (pip install -e '.[ros]')")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosutil import ros_context, spin_until  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, String  # noqa: E402

from robot_rl.data.mcap_reader import list_episodes, read_episode  # noqa: E402
from ros_nodes.core.sim_robot import SimRobot  # noqa: E402
from ros_nodes.hil_operator import HilOperator  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.sim_robot_node import SimRobotNode  # noqa: E402

pytestmark = pytest.mark.ros

PANDA = "robot_rl/PandaReach-v0"
OPERATOR = {
    "engage_threshold": 0.25,
    "engage_ticks": 3,
    "release_ticks": 3,
    "min_takeover_s": 0.3,
    "max_takeover_s": 2.0,
    "cooldown_s": 0.5,
}


def _params(**kw: Any) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in kw.items()]


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_core_expert_suggestion_drives_the_task_in_both_engines(ros_env: int, backend: str) -> None:
    robot = SimRobot(PANDA, backend=backend, seed=3, expert=True)
    try:
        assert robot.expert_enabled
        for _ in range(50):
            command = robot.expert_command
            assert command is not None and command.shape == (7,)
            assert np.all(command >= robot.command_low) and np.all(command <= robot.command_high)
            robot.apply_command(command)
            snap = robot.step()
        assert snap.episode_over and snap.is_success  # the expert's suggestion, executed, solves the task
        assert robot.expert_errors == 0
    finally:
        robot.close()
    off = SimRobot(PANDA)
    try:
        assert not off.expert_enabled and off.expert_command is None
    finally:
        off.close()


def test_operator_takes_over_a_weak_policy_and_the_task_recovers(
    ros_env: int, reach_bundle: Path, tmp_path: Path
) -> None:
    record = tmp_path / "episodes"
    events: list[dict[str, Any]] = []
    successes: list[bool] = []
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(
            context=ctx, parameter_overrides=_params(env_id=PANDA, seed=3, publish_expert_command=True)
        )
        policy = PolicyNode(
            context=ctx,
            parameter_overrides=_params(bundle_dir=str(reach_bundle), record_dir=str(record), operator="hil"),
        )
        operator = HilOperator(context=ctx, parameter_overrides=_params(bundle_dir=str(reach_bundle), **OPERATOR))
        probe = rclpy.create_node("probe", context=ctx)
        probe.create_subscription(String, "/operator/interventions", lambda m: events.append(json.loads(m.data)), 50)
        probe.create_subscription(Bool, "/robot_rl/is_success", lambda m: successes.append(bool(m.data)), 50)
        for node in (robot, policy, operator, probe):
            executor.add_node(node)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS, policy._last_error
        recovered = lambda: any(r.end_reason.startswith("recovered") for r in operator.logic.records)  # noqa: E731
        assert spin_until(executor, lambda: recovered() and len(policy.episodes) >= 1, 20.0), (
            operator.logic.records,
            operator.logic.stats,
            policy.loop_summary(),
        )
        assert policy.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        summary = policy.loop_summary()
        records = list(operator.logic.records)
        windows = list(operator.windows)
        stats = operator.logic.stats
        # the expert stream stops (the sim robot stops stepping): an engaged operator would let go; it is counted
        robot.stop()
        assert spin_until(executor, lambda: stats.stale >= 1, 2.0)
        assert operator.logic.expert_stale and not operator.logic.engaged
    first = records[0]
    assert first.reason.startswith("drift ") and first.start_drift > OPERATOR["engage_threshold"]
    rec = next(r for r in records if r.end_reason.startswith("recovered"))
    assert rec.end_reason.startswith("recovered: task success for")
    assert rec.duration_s is not None and rec.duration_s >= OPERATOR["min_takeover_s"] and rec.ticks > 0
    # every start and end went out on /operator/interventions as JSON, in order
    starts = [e for e in events if e["event"] == "start"]
    ends = [e for e in events if e["event"] == "end"]
    assert len(starts) >= len(records) and [e["index"] for e in ends[: len(records)]] == [r.index for r in records]
    assert ends[0]["duration_s"] == pytest.approx(records[0].duration_s)
    assert ends[0]["reason"] == first.reason and ends[0]["end_reason"] == first.end_reason
    # the random policy never reaches the target on its own; under the operator the sim reports success
    assert any(successes)
    # the policy node saw a person: it executed and labelled the operator's steps as interventions
    assert summary["intervention_steps"] > 0
    episodes = [read_episode(p) for p in list_episodes(record)]
    assert sum(int(e.intervention.sum()) for e in episodes) == summary["intervention_steps"]
    assert episodes[0].metadata["operator"] == "hil"
    stamps = np.concatenate([e.stamps_ns[e.intervention] for e in episodes]) / 1e9
    in_window = [any(s <= t <= (e if np.isfinite(e) else np.inf) + 0.1 for s, e in windows) for t in stamps]
    assert all(in_window)  # labels sit inside the operator's takeovers
    assert all(np.isfinite(e.executed_actions).all() for e in episodes)


def test_expert_topic_is_off_by_default(ros_env: int) -> None:
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(context=ctx, parameter_overrides=_params(env_id=PANDA))
        got: list[list[float]] = []
        probe = rclpy.create_node("probe", context=ctx)
        probe.create_subscription(Float64MultiArray, "/sim/expert_command", lambda m: got.append(list(m.data)), 10)
        for node in (robot, probe):
            executor.add_node(node)
        assert spin_until(executor, lambda: robot.steps >= 10, 5.0)
        assert got == [] and probe.count_publishers("/sim/expert_command") == 0
