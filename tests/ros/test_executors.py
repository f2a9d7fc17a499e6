"""Every executor kind `ROBOT_RL_EXECUTOR` can select serves a real policy node: lifecycle services answer, the
node goes active, and SIGINT still takes the clean stop path (exit 0). A misspelt kind is refused loudly."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from lifecycle_msgs.msg import Transition

from ros_nodes.bringup import LifecycleClient
from ros_nodes.executors import EXECUTOR_ENV, EXECUTORS, executor_kind
from ros_nodes.ros_env import isolated_ros_env

REPO = Path(__file__).resolve().parents[2]


def test_executor_kind_reads_the_environment_and_refuses_unknown_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert executor_kind() == "single"
    monkeypatch.setenv(EXECUTOR_ENV, " Events ")
    assert executor_kind() == "events"
    with pytest.raises(ValueError, match="choose one of single, multi, events"):
        executor_kind("event")


def _policy_node(bundle: Path, domain: int, kind: str) -> subprocess.Popen[str]:
    env = isolated_ros_env(domain)
    env["PYTHONPATH"] = str(REPO)
    env[EXECUTOR_ENV] = kind
    return subprocess.Popen(
        [sys.executable, "-m", "ros_nodes.policy_node", "--ros-args", "-p", f"bundle_dir:={bundle}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("kind", EXECUTORS)
def test_the_policy_node_runs_its_lifecycle_on_every_executor(
    kind: str, ros_env: int, cartpole_lqr_bundle: Path
) -> None:
    proc = _policy_node(cartpole_lqr_bundle, ros_env, kind)
    client = LifecycleClient("/policy_node")
    try:
        client.wait_for_service(30.0, lambda: None if proc.poll() is None else "policy node exited")
        assert client.transition(Transition.TRANSITION_CONFIGURE)
        assert client.transition(Transition.TRANSITION_ACTIVATE)
        assert client.state() == "active"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_misspelt_executor_stops_the_node_before_it_starts(ros_env: int, cartpole_lqr_bundle: Path) -> None:
    proc = _policy_node(cartpole_lqr_bundle, ros_env, "fastest")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "is not an executor" in err
