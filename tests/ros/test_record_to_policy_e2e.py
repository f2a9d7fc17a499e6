"""From robot to policy and back, no hand-written glue: a ROS 2 deployment on the simulated robot is recorded,
turned into a dataset with `robot-rl dataset mcap`, a policy is trained offline on it (`robot-rl train bc`),
exported, and evaluated in simulation — all through the CLI a user runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosutil import ros_context, spin_until  # noqa: E402

from robot_rl.cli import eval_bundle, main  # noqa: E402
from robot_rl.core.specs import PolicySpec  # noqa: E402
from robot_rl.data.datasets import load_episodes, load_replay  # noqa: E402
from robot_rl.data.mcap_reader import list_episodes, read_episode  # noqa: E402
from robot_rl.export.runtime import OnnxPolicy  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.scripted_operator import ScriptedOperator  # noqa: E402
from ros_nodes.sim_robot_node import SimRobotNode  # noqa: E402

ENV = "robot_rl/CartPoleBalance-v0"


def _params(**kw: Any) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in kw.items()]


def _record(bundle: Path, record: Path, episodes: int, push: tuple[float, float, float], seed: int) -> None:
    """Deploy `bundle` on the simulated cart-pole through ROS 2 and record `episodes` episodes to `record`."""
    force, start_s, duration_s = push
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(context=ctx, parameter_overrides=_params(env_id=ENV, seed=seed, episode_steps=100))
        policy = PolicyNode(
            context=ctx,
            parameter_overrides=_params(
                bundle_dir=str(bundle), record_dir=str(record), operator="scripted", robot_resets_on_done=True
            ),
        )
        operator = ScriptedOperator(command=[force], start_s=start_s, duration_s=duration_s, rate_hz=50.0, context=ctx)
        for node in (robot, policy, operator):
            executor.add_node(node)
        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS, policy._last_error
        session = policy._session
        assert session is not None
        assert spin_until(executor, lambda: len(session.episodes) >= episodes, 30.0), policy.loop_summary()
        assert policy.trigger_deactivate() == TransitionCallbackReturn.SUCCESS


def test_recorded_deployment_becomes_a_dataset_a_bc_policy_and_a_verified_bundle(
    ros_env: int, cartpole_lqr_bundle: Path, tmp_path: Path
) -> None:
    record, dataset, runs, bundle = (tmp_path / d for d in ("episodes", "dataset", "runs", "bc_bundle"))
    # The LQR bundle balances; a scripted human nudges the cart for 0.4 s (labelled intervention steps).
    _record(cartpole_lqr_bundle, record, episodes=4, push=(5.0, 0.6, 0.4), seed=1)
    recordings = [read_episode(p) for p in list_episodes(record)]
    assert len(recordings) >= 4 and sum(int(r.intervention.sum()) for r in recordings) > 0
    # each recording carries the deployed policy's typed contract: the dataset needs no copy of the bundle
    deployed = OnnxPolicy.load(cartpole_lqr_bundle).spec
    assert PolicySpec.from_json(json.loads(recordings[0].metadata["policy_spec"])) == deployed

    assert main(["dataset", "mcap", "--episodes-dir", str(record), "--out", str(dataset), "--no-progress"]) == 0
    episodes = load_episodes(dataset)
    assert len(episodes) >= 4
    # Physical actions (N, the cart's effort) kept beside the policy's own, human steps labelled.
    assert sum(int(e.intervention.sum()) for e in episodes) > 0
    steps = sum(len(e.actions) for e in episodes)
    assert steps >= 300

    run_args = ["--env", ENV, "--data", "offline", "--dataset", str(dataset), "--total-steps", "3000"]
    run_args += ["--out-dir", str(runs), "--run-name", "bc", "--eval-every", "0", "--eval-episodes", "2"]
    run_args += ["--no-progress", "--no-tensorboard", "--seed", "0"]
    assert main(["train", "bc", *run_args]) == 0
    assert main(["export", str(runs / "bc"), "--out", str(bundle)]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["policy_spec"]["robot"]["command"]["type"] == "joint_effort"

    # The cloned policy imitates the deployed policy's commands (physical units, same observations) where neither a
    # human nor the safety chain replaced them (the chain holds a few ticks when the simulator re-poses the arm at
    # an episode start: a jump no velocity limit explains) ...
    cloned = OnnxPolicy.load(bundle)
    own = [~(e.intervention | e.safety_activated) for e in episodes]
    obs = np.concatenate([e.observations[:-1][m] for e, m in zip(episodes, own, strict=True)])
    act = np.concatenate([e.actions[m] for e, m in zip(episodes, own, strict=True)])
    assert len(act) >= 250
    err = np.abs(cloned.act_batch(obs) - act)
    # Judged on the typical step and against the best constant command: the few steps at the ±20 N effort limit (a
    # tanh-squashed actor only approaches its bounds) would make a mean-error bar a coin toss on how many the
    # recording happened to hold.
    constant_err = np.abs(act - np.median(act, axis=0)).mean()
    assert np.median(err) < 0.1 * float(np.abs(act).mean()), (np.median(err), np.abs(act).mean())
    assert err.mean() < 0.3 * constant_err, (err.mean(), constant_err)
    # ... and balances the cart-pole in simulation like the deployed bundle did.
    res, _ = eval_bundle(bundle, "", episodes=5, seed=7)
    ref, _ = eval_bundle(cartpole_lqr_bundle, "", episodes=5, seed=7)
    assert ref.success_rate == 1.0
    assert res.success_rate >= 0.8, (res, ref)


def test_the_last_step_of_a_terminated_episode_reaches_the_dataset_and_the_replay_buffer(
    ros_env: int, cartpole_lqr_bundle: Path, tmp_path: Path
) -> None:
    record, dataset = tmp_path / "episodes", tmp_path / "dataset"
    # A full-force push for 2 s: the pole falls (a real termination) long before the 2 s episode limit ends it.
    _record(cartpole_lqr_bundle, record, episodes=1, push=(60.0, 0.3, 2.0), seed=2)
    first = read_episode(list_episodes(record)[0])
    assert first.terminated[-1] and not first.truncated.any()
    assert main(["dataset", "mcap", "--episodes-dir", str(record), "--out", str(dataset), "--no-progress"]) == 0
    (episode, *_) = load_episodes(dataset)
    assert episode.terminated and not episode.truncated
    assert len(episode.actions) == len(first)  # every recorded step, the terminal one included
    np.testing.assert_allclose(episode.actions[-1], first.executed_actions[-1])
    buf = load_replay(dataset, OnnxPolicy.load(cartpole_lqr_bundle).spec)
    terminated = buf.state_arrays()["terminated"][: len(first)]
    assert terminated.tolist() == [0.0] * (len(first) - 1) + [1.0]  # no bootstrap from the fallen state only
