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


class _PolicyNodeProcess:
    """The policy node in a process of its own, with a lifecycle client to it: `start` (re)launches it, `stop`
    stops it cleanly (SIGINT, exit 0); leaving the block closes the client and kills a process still running."""

    def __init__(self, bundle: Path, ros_env: int) -> None:
        self.bundle = bundle
        self.env = isolated_ros_env(ros_env)
        self.env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        self.proc = self.start()
        self.client = LifecycleClient("/policy_node")

    def start(self) -> subprocess.Popen[str]:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ros_nodes.policy_node", "--ros-args", "-p", f"bundle_dir:={self.bundle}"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return self.proc

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # a clean stop exits 0
        assert self.proc.wait(timeout=15) == 0, self.stderr()

    def __enter__(self) -> _PolicyNodeProcess:
        try:
            self.client.wait_for_service(30.0, lambda: None if self.proc.poll() is None else "policy node exited")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def test_killed_policy_node_restarts_unconfigured(ros_env: int, cartpole_lqr_bundle: Path) -> None:
    with _PolicyNodeProcess(cartpole_lqr_bundle, ros_env) as node:
        client = node.client
        assert client.transition(Transition.TRANSITION_CONFIGURE)
        assert client.transition(Transition.TRANSITION_ACTIVATE)
        assert client.state() == "active"
        node.proc.send_signal(
            signal.SIGKILL
        )  # no hold, no cleanup: the robot controller must time out (docs/deploy.md)
        node.proc.wait(timeout=10)
        proc = node.start()
        # The dead node's service may still be in discovery for a while: ask until the new one answers.
        state, deadline = "", time.monotonic() + 30.0
        while not state and time.monotonic() < deadline:
            assert proc.poll() is None, "restarted policy node exited"
            try:
                state = client.state(timeout_s=2.0)
            except RuntimeError:
                continue
        assert state == "unconfigured"
        node.stop()


def test_a_repeated_transition_is_refused_and_the_node_lives(ros_env: int, cartpole_lqr_bundle: Path) -> None:
    """A supervisor whose configure answer was lost may send configure again after it went through: the node answers
    success=False and keeps running (Jazzy's rclpy raised in the service callback, which killed the node)."""
    with _PolicyNodeProcess(cartpole_lqr_bundle, ros_env) as node:
        client = node.client
        assert client.transition(Transition.TRANSITION_CONFIGURE)
        again = client._ChangeState.Request()
        again.transition.id = Transition.TRANSITION_CONFIGURE
        assert client._call(client._change, again, 10.0).success is False  # raw: LifecycleClient would not resend
        time.sleep(0.5)
        assert node.proc.poll() is None, node.stderr()
        assert client.state() == "inactive"
        assert client.transition(Transition.TRANSITION_ACTIVATE) and client.state() == "active"
        node.stop()
