"""R4: a policy node killed with SIGKILL and restarted comes up unconfigured, never straight back to active."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from lifecycle_msgs.msg import Transition

from ros_nodes.bringup import LifecycleClient
from ros_nodes.ros_env import isolated_ros_env


def _start(bundle: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ros_nodes.policy_node", "--ros-args", "-p", f"bundle_dir:={bundle}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_policy_node_restarts_unconfigured(ros_env: int, cartpole_lqr_bundle: Path) -> None:
    env = isolated_ros_env(ros_env)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = _start(cartpole_lqr_bundle, env)
    client = LifecycleClient("/policy_node")
    try:
        client.wait_for_service(30.0, lambda: None if proc.poll() is None else "policy node exited")
        assert client.transition(Transition.TRANSITION_CONFIGURE)
        assert client.transition(Transition.TRANSITION_ACTIVATE)
        assert client.state() == "active"
        proc.send_signal(signal.SIGKILL)  # no hold, no cleanup: the robot controller must time out (docs/deploy.md)
        proc.wait(timeout=10)
        proc = _start(cartpole_lqr_bundle, env)
        # The dead node's service may still be in discovery for a while: ask until the new one answers.
        state, deadline = "", time.monotonic() + 30.0
        while not state and time.monotonic() < deadline:
            assert proc.poll() is None, "restarted policy node exited"
            try:
                state = client.state(timeout_s=2.0)
            except RuntimeError:
                continue
        assert state == "unconfigured"
        proc.send_signal(signal.SIGINT)  # a clean stop exits 0
        assert proc.wait(timeout=15) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_repeated_transition_is_refused_and_the_node_lives(ros_env: int, cartpole_lqr_bundle: Path) -> None:
    """A supervisor whose configure answer was lost may send configure again after it went through: the node answers
    success=False and keeps running (Jazzy's rclpy raised in the service callback, which killed the node)."""
    env = isolated_ros_env(ros_env)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = _start(cartpole_lqr_bundle, env)
    client = LifecycleClient("/policy_node")
    try:
        client.wait_for_service(30.0, lambda: None if proc.poll() is None else "policy node exited")
        assert client.transition(Transition.TRANSITION_CONFIGURE)
        again = client._ChangeState.Request()
        again.transition.id = Transition.TRANSITION_CONFIGURE
        assert client._call(client._change, again, 10.0).success is False  # raw: LifecycleClient would not resend
        time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert client.state() == "inactive"
        assert client.transition(Transition.TRANSITION_ACTIVATE) and client.state() == "active"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
