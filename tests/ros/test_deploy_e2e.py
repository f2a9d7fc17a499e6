"""End-to-end deployment over DDS on loopback: sim robot node + policy node + scripted operator + recording."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosutil import ros_context, spin_for, spin_until  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from robot_rl.data.mcap_reader import list_episodes, read_episode  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.scripted_operator import ScriptedOperator  # noqa: E402
from ros_nodes.sim_robot_node import SimRobotNode  # noqa: E402


def _params(**kw: Any) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in kw.items()]


def test_lqr_bundle_balances_the_sim_cartpole_through_ros_with_a_takeover(
    ros_env: int, cartpole_lqr_bundle: Path, tmp_path: Path
) -> None:
    record = tmp_path / "episodes"
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(
            context=ctx,
            parameter_overrides=_params(
                env_id="robot_rl/CartPoleBalance-v0", seed=1, shuffle_joint_order=True, episode_steps=150
            ),
        )
        policy = PolicyNode(
            context=ctx,
            parameter_overrides=_params(
                bundle_dir=str(cartpole_lqr_bundle), record_dir=str(record), operator="scripted"
            ),
        )
        # The operator pushes gently for 0.4 s: the policy must recover afterwards.
        operator = ScriptedOperator(command=[5.0], start_s=0.8, duration_s=0.4, rate_hz=50.0, context=ctx)
        for node in (robot, policy, operator):
            executor.add_node(node)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert spin_until(executor, lambda: len(policy.episodes) >= 2, 20.0), policy.loop_summary()
        assert policy.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        summary = policy.loop_summary()
        windows = list(operator.windows)
    assert policy.episodes[:2] == [True, True], summary  # balanced through both episodes, takeover included
    assert summary["intervention_steps"] > 0 and summary["loop"]["ticks"] > 100
    episodes = [read_episode(p) for p in list_episodes(record)]
    assert len(episodes) >= 2
    first = episodes[0]
    assert first.metadata["operator"] == "scripted" and first.metadata["robot"] == "cartpole"
    assert first.metadata["is_success"] == "true"
    # the sim's time limit is a truncation, recorded on the episode's last step (not lost to a learner)
    assert first.metadata["truncated"] == "true" and first.metadata["ended_by"] == "robot"
    assert first.truncated[-1] and not first.terminated.any() and not first.truncated[:-1].any()
    recorded = sum(int(e.intervention.sum()) for e in episodes)
    assert recorded == summary["intervention_steps"]  # every executed human step is labelled, and only those
    start, end = windows[0]
    stamps = np.concatenate([e.stamps_ns[e.intervention] for e in episodes]) / 1e9
    assert stamps.min() >= start and stamps.max() <= end + 0.1  # labels sit inside the takeover window
    assert all(np.isfinite(e.executed_actions).all() for e in episodes)
    assert any("rlif" in e.rewards and e.rewards["rlif"].min() == -1.0 for e in episodes)


def test_a_fallen_pole_is_recorded_as_terminated_on_the_last_step(
    ros_env: int, cartpole_lqr_bundle: Path, tmp_path: Path
) -> None:
    record = tmp_path / "episodes"
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(
            context=ctx, parameter_overrides=_params(env_id="robot_rl/CartPoleBalance-v0", seed=2, episode_steps=250)
        )
        policy = PolicyNode(
            context=ctx, parameter_overrides=_params(bundle_dir=str(cartpole_lqr_bundle), record_dir=str(record))
        )
        # A full-force push for 2 s: the pole falls (|theta| > 0.8 rad) long before the 5 s time limit.
        operator = ScriptedOperator(command=[60.0], start_s=0.3, duration_s=2.0, rate_hz=50.0, context=ctx)
        for node in (robot, policy, operator):
            executor.add_node(node)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS, policy._last_error
        session = policy._session
        assert session is not None
        assert spin_until(executor, lambda: len(session.episodes) >= 1, 10.0), policy.loop_summary()
        assert policy.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert session.episodes[0].ended_by == "robot" and session.episodes[0].terminated
    first = read_episode(list_episodes(record)[0])
    assert len(first) > 10 and first.metadata["terminated"] == "true" and first.metadata["truncated"] == "false"
    # the terminal flag sits on the last recorded step, and only there; no step of it is a truncation
    assert first.terminated.tolist() == [False] * (len(first) - 1) + [True] and not first.truncated.any()
    assert first.steps.tolist() == list(range(len(first)))  # every tick of the episode was recorded
    assert first.intervention[-1]  # the push is what ended it


def test_reach_bundle_gets_every_observation_topic_and_stays_in_bounds(ros_env: int, reach_bundle: Path) -> None:
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(context=ctx, parameter_overrides=_params(env_id="robot_rl/PandaReach-v0"))
        policy = PolicyNode(context=ctx, parameter_overrides=_params(bundle_dir=str(reach_bundle)))
        commands: list[list[float]] = []
        probe = rclpy.create_node("probe", context=ctx)
        probe.create_subscription(
            Float64MultiArray, "/velocity_controller/commands", lambda m: commands.append(list(m.data)), 10
        )
        for node in (robot, policy, probe):
            executor.add_node(node)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS
        end = time.monotonic() + 2.0
        spin_for(executor, max(0.0, end - time.monotonic()))
        dep = policy._dep
        assert dep is not None and dep.step.assembler.missing() == ()
        summary = policy.loop_summary()
        assert summary["loop"]["ticks"] >= 20 and summary["policy_errors"] == 0
        assert robot.rejected_commands == 0
        limits = np.asarray(dep.safety_config.velocity_limit_rad_s)
        sent = np.asarray(commands)
        assert len(sent) >= 20 and sent.shape[1] == 7
        assert np.isfinite(sent).all() and (np.abs(sent) <= limits + 1e-12).all()
        assert np.abs(sent).max() > 0.0  # the (random) policy really drives: not a stream of holds


def test_policy_node_runs_on_sim_time_from_clock(ros_env: int, cartpole_lqr_bundle: Path, tmp_path: Path) -> None:
    record = tmp_path / "episodes"
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(
            context=ctx, parameter_overrides=_params(env_id="robot_rl/CartPoleBalance-v0", publish_clock=True)
        )
        policy = PolicyNode(
            context=ctx,
            parameter_overrides=_params(bundle_dir=str(cartpole_lqr_bundle), record_dir=str(record), use_sim_time=True),
        )
        executor.add_node(robot)
        executor.add_node(policy)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS
        spin_for(executor, 2.0)
        assert policy.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        summary = policy.loop_summary()
    (episode,) = [read_episode(p) for p in list_episodes(record)]
    stamps_s = episode.stamps_ns / 1e9
    # Sim time starts near zero (wall-clock time would be ~1.8e9 s) and advances with the sim.
    assert stamps_s.max() < 60.0 and np.all(np.diff(stamps_s) >= 0.0)
    assert summary["loop"]["ticks"] > 20
    held = summary["safety"].get("observation_watchdog", 0)
    assert held < summary["loop"]["ticks"] / 2, summary  # fresh on sim time: the robot is driven, not held
