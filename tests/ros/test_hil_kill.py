"""The loop survives either side dying (issue 15): a learner killed with SIGKILL leaves the robot running its last
good bundle, a restart on the same folder is refused without `resume` and resumes from the checkpoint with it; a
policy node killed with SIGKILL is noticed by the learner through the stream's liveliness, and the node that
comes back (unconfigured, then activated) streams under a new run id the learner takes as a restart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from lifecycle_msgs.msg import Transition  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosutil import ros_context, spin_for, spin_until  # noqa: E402

from robot_rl.train import checkpoint as ckpt  # noqa: E402
from ros_nodes.bringup import LifecycleClient  # noqa: E402
from ros_nodes.learner_node import LearnerNode  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.ros_env import isolated_ros_env  # noqa: E402
from ros_nodes.sim_robot_node import SimRobotNode  # noqa: E402

REACH = "robot_rl/PandaReach-v0"
STEPS, BUNDLES = "/robot_rl/steps", "/robot_rl/learner/bundle"
ROOT = Path(__file__).resolve().parents[2]
LEARNER = {
    "env": REACH,
    "algo_config": json.dumps({"actor_hidden": [32, 32], "critic_hidden": [32, 32], "batch_size": 32}),
    "learning_starts": 30,
    "export_every_updates": 40,
    "checkpoint_every_updates": 20,
    "parity_samples": 500,
    "updates_per_slice": 10,
}


def _params(**kw: Any) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in kw.items()]


def _learner_process(ros_env: int, tmp: Path, run: Path, base: Path, resume: bool) -> subprocess.Popen[str]:
    """`python -m ros_nodes.learner_node` with a parameter file (the JSON config needs no shell quoting)."""
    params = {**LEARNER, "run_dir": str(run), "base": str(base), "resume": resume}
    path = tmp / f"learner_{int(resume)}_{time.monotonic_ns()}.yaml"
    path.write_text(json.dumps({"/**": {"ros__parameters": params}}))  # JSON is YAML
    env = isolated_ros_env(ros_env)
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "ros_nodes.learner_node", "--ros-args", "--params-file", str(path)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _checkpoint_step(run: Path) -> int:
    latest = ckpt.latest_checkpoint(run / "checkpoints")
    return -1 if latest is None else int(latest.name.split("_")[-1])


def test_a_killed_learner_leaves_the_robot_running_and_resumes_from_its_checkpoint(
    ros_env: int, reach_bundle: Path, tmp_path: Path
) -> None:
    run = tmp_path / "learner"
    with ros_context() as (ctx, executor):
        robot = SimRobotNode(context=ctx, parameter_overrides=_params(env_id=REACH))
        node = PolicyNode(
            context=ctx,
            parameter_overrides=_params(
                bundle_dir=str(reach_bundle),
                step_stream_topic=STEPS,
                bundle_announce_topic=BUNDLES,
                learner_status_topic="/robot_rl/learner/status",
                episode_steps=15,
            ),
        )
        for n in (robot, node):
            executor.add_node(n)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node._last_error
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, node._last_error
        swapper = node._swapper
        assert swapper is not None
        first = swapper.active_sha256
        learner = _learner_process(ros_env, tmp_path, run, reach_bundle, resume=False)
        try:
            assert spin_until(executor, lambda: swapper.active_sha256 != first, timeout_s=120.0), (
                learner.poll(),
                swapper.stats(),
            )
            learned = swapper.active_sha256
            killed_at = _checkpoint_step(run)
            assert killed_at > 0
            watch = node._learner
            assert watch is not None and spin_until(executor, lambda: watch.alive, timeout_s=10.0)
            learner.send_signal(signal.SIGKILL)
            learner.wait(timeout=10)
            killed = time.monotonic()
            # the node is told the learner is gone (liveliness lease 1 s offered, 2 s asked) and says so
            assert spin_until(executor, lambda: not watch.alive, timeout_s=10.0)
            assert time.monotonic() - killed < 6.0 and watch.lost == 1

            # the robot keeps running the learner's last bundle: episodes go on, no hold, no swap back
            episodes = len(node.episodes)
            spin_for(executor, 3.0)
            assert len(node.episodes) >= episodes + 1 and swapper.active_sha256 == learned
            after = node.loop_summary()
            assert after["policy_errors"] == 0 and after["last_error"] == ""

            # a restart on the same folder without resume is refused at once, touching nothing
            refused = _learner_process(ros_env, tmp_path, run, reach_bundle, resume=False)
            _, err = refused.communicate(timeout=60)
            assert refused.returncode == 2 and "resume" in err, err
            assert _checkpoint_step(run) == killed_at

            # with resume it continues from the checkpoint (buffers included) and trains on
            learner = _learner_process(ros_env, tmp_path, run, reach_bundle, resume=True)
            assert spin_until(executor, lambda: _checkpoint_step(run) > killed_at, timeout_s=120.0), learner.poll()
            learner.send_signal(signal.SIGINT)
            assert learner.wait(timeout=30) == 0, learner.stderr.read() if learner.stderr else ""
        finally:
            if learner.poll() is None:
                learner.kill()
                learner.wait(timeout=10)
            node.trigger_deactivate()


def test_a_killed_policy_node_is_noticed_and_its_restart_streams_as_a_new_run(
    ros_env: int, reach_bundle: Path, tmp_path: Path
) -> None:
    env = isolated_ros_env(ros_env)
    env["PYTHONPATH"] = str(ROOT)
    node_cmd = [sys.executable, "-m", "ros_nodes.policy_node", "--ros-args", "-p", f"bundle_dir:={reach_bundle}"]
    node_cmd += ["-p", f"step_stream_topic:={STEPS}", "-p", "episode_steps:=15"]

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(node_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def activate(client: LifecycleClient, proc: subprocess.Popen[str]) -> None:
        state, deadline = "", time.monotonic() + 30.0
        while state != "unconfigured" and time.monotonic() < deadline:  # a restarted node comes up unconfigured
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                state = client.state(timeout_s=2.0)
            except RuntimeError:
                continue
        assert client.transition(Transition.TRANSITION_CONFIGURE)
        assert client.transition(Transition.TRANSITION_ACTIVATE)

    proc = start()
    client = LifecycleClient("/policy_node")
    try:
        with ros_context() as (ctx, executor):
            robot = SimRobotNode(context=ctx, parameter_overrides=_params(env_id=REACH))
            learner = LearnerNode(
                context=ctx,
                parameter_overrides=_params(
                    run_dir=str(tmp_path / "learner"), base=str(reach_bundle), **{**LEARNER, "learning_starts": 10_000}
                ),
            )
            for n in (robot, learner):
                executor.add_node(n)
            activate(client, proc)
            service = learner.service

            def complete() -> int:
                return int(service.stats()["episodes_complete"])

            assert spin_until(executor, lambda: complete() >= 2, timeout_s=60.0), service.stats()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            killed = time.monotonic()
            assert spin_until(executor, lambda: service.stream_lost >= 1, timeout_s=10.0), service.stats()
            noticed_s = time.monotonic() - killed

            proc = start()
            activate(client, proc)
            before = complete()
            assert spin_until(executor, lambda: complete() >= before + 1, timeout_s=60.0), service.stats()
            stats = service.stats()
            learner.shutdown()
    finally:
        client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
    assert noticed_s < 5.0  # the liveliness lease is 1 s; discovery on a loaded machine adds some
    assert stats["sequence/restarts"] >= 1 and stats["malformed"] == 0
