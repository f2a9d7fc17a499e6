"""`robot-rl deploy` process supervision: a dead node is noticed at once, the robot side stops first, nothing is
left behind (children, temporary folders).

The first tests drive bringup's child handling with plain Python children (no ROS); the last one kills the policy
node of a real deploy.
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ros_nodes.bringup import EXIT_CHILD, Child, start_child, stop_children, stop_order
from ros_nodes.launch_subset import NodeSpec

REPO = Path(__file__).resolve().parents[2]
CARTPOLE = "robot_rl/CartPoleBalance-v0"

# A stand-in node: on SIGINT it records whether the robot had already gone (its exit marker exists), then exits.
# The robot stand-in takes a while to stop, so stopping everything at once would be seen by the others.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    name, log_dir, robot = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    ignore_sigint = sys.argv[4] == "1"
    def on_sigint(signum, frame):
        if ignore_sigint:
            return
        if robot:
            time.sleep(0.5)
            open(os.path.join(log_dir, "robot_stopped"), "w").close()
        else:
            seen = os.path.exists(os.path.join(log_dir, "robot_stopped"))
            open(os.path.join(log_dir, name + ".stop"), "w").write("robot gone" if seen else "robot running")
        sys.exit(0)
    signal.signal(signal.SIGINT, on_sigint)
    open(os.path.join(log_dir, name + ".ready"), "w").close()
    while True:
        time.sleep(0.05)
    """
)


def _wait_for(predicate: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached within a generous timeout")
        time.sleep(0.02)


@pytest.fixture
def fake_nodes(tmp_path: Path) -> Iterator[tuple[list[Child], threading.Event, Path]]:
    """sim_robot, policy_node and scripted_operator stand-ins started the way bringup starts nodes."""
    wake = threading.Event()
    out, lock = io.StringIO(), threading.Lock()
    children: list[Child] = []
    for exe, ignore in (("sim_robot", False), ("policy_node", False), ("scripted_operator", False)):
        spec = NodeSpec("robot_rl", exe, exe)
        robot = "1" if exe == "sim_robot" else "0"
        cmd = [sys.executable, "-c", CHILD, exe, str(tmp_path), robot, "1" if ignore else "0"]
        children.append(start_child(spec, cmd, dict(os.environ), out, lock, wake))
    _wait_for(lambda: all((tmp_path / f"{c.name}.ready").exists() for c in children))
    try:
        yield children, wake, tmp_path
    finally:
        for c in children:
            if not c.exited.is_set():
                c.proc.kill()
                c.proc.wait()


def test_a_killed_child_wakes_the_supervisor_and_is_named(
    fake_nodes: tuple[list[Child], threading.Event, Path],
) -> None:
    children, wake, _ = fake_nodes
    assert not wake.is_set() and all(c.exit_code is None and c.describe_exit() == "" for c in children)
    policy = children[1]
    policy.proc.send_signal(signal.SIGKILL)
    assert wake.wait(60.0)  # set by the child's waiter thread, not found by a polling loop
    assert policy.exited.is_set() and policy.exit_code == -signal.SIGKILL
    assert policy.describe_exit() == "was killed by SIGKILL (exit code -9)"
    assert [c.exit_code for c in (children[0], children[2])] == [None, None]
    stop_children(children)
    assert all(c.exited.is_set() for c in children)


def test_the_robot_side_is_stopped_before_anything_else(
    fake_nodes: tuple[list[Child], threading.Event, Path],
) -> None:
    children, _, log_dir = fake_nodes
    assert [[c.name for c in g] for g in stop_order(children)] == [
        ["sim_robot"],
        ["scripted_operator", "policy_node"],
    ]
    said: list[str] = []
    stop_children(children, say=said.append)
    assert (log_dir / "robot_stopped").exists()
    # Every other node was told to stop only once the robot had stopped (and been reaped).
    assert (log_dir / "policy_node.stop").read_text() == "robot gone"
    assert (log_dir / "scripted_operator.stop").read_text() == "robot gone"
    assert said[0].startswith("stopping sim_robot (robot side")
    assert [c.exit_code for c in children] == [0, 0, 0] and not any(c.killed for c in children)


def test_a_child_that_ignores_sigint_is_killed(tmp_path: Path) -> None:
    wake = threading.Event()
    spec = NodeSpec("robot_rl", "teleop", "teleop")
    cmd = [sys.executable, "-c", CHILD, "teleop", str(tmp_path), "0", "1"]
    child = start_child(spec, cmd, dict(os.environ), io.StringIO(), threading.Lock(), wake)
    _wait_for(lambda: (tmp_path / "teleop.ready").exists())
    stop_children([child], grace_s=0.5)
    assert child.killed and child.exit_code == -signal.SIGKILL


def test_dry_run_leaves_no_temporary_folder(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "AMENT"))}
    env["TMPDIR"] = str(tmp)  # tempfile.gettempdir() of the child: only this run writes here
    out = subprocess.run(
        [sys.executable, "-m", "robot_rl.cli", "deploy", "launch/sim_deploy.launch.xml", "bundle:=b", "--dry-run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "__node:=policy_node" in out.stdout
    assert "bundle_dir: b" in out.stdout  # the inline parameters are shown, since their file is not kept
    # Folders only: importing onnxruntime (the bundle check) leaves its own `.ses` file in TMPDIR.
    assert sorted(p.name for p in tmp.iterdir() if p.is_dir() or p.name.startswith("robot_rl")) == []


# ---------------------------------------------------------------------------------------------- over ROS
def _lines(stream: object, q: queue.Queue[str | None]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        q.put(line)
    q.put(None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_deploy_exits_at_once_when_the_policy_node_is_killed(cartpole_lqr_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("rclpy", reason="rclpy is not installed (pip install -e '.[ros]')")
    from ros_nodes.ros_env import cleanup_fastdds_shm, isolated_ros_env

    env = isolated_ros_env()
    duration_s = 600.0  # the deploy would run this long: it must end long before because a node died
    cmd = [
        sys.executable,
        "-m",
        "robot_rl.cli",
        "deploy",
        "launch/sim_deploy.launch.xml",
        f"bundle:={cartpole_lqr_bundle}",
        f"env_id:={CARTPOLE}",
        "params_file:=launch/params/cartpole_sim.yaml",
        "teleop:=false",
        "scripted_takeover:=true",
        "takeover_start_s:=1000.0",  # the operator stays idle and alive
        "--duration-s",
        str(duration_s),
        "--domain-id",
        env["ROS_DOMAIN_ID"],
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    log: list[str] = []
    pids: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 180.0
        ready = ("[bringup] /policy_node: active", "[sim_robot] [INFO]")  # the sim robot logs once it steps
        while not all(any(r in line for line in log) for r in ready):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "".join(log)
            log.append(line)
            m = re.search(r"\[bringup\] started (\S+) \(pid (\d+)\)", line)
            if m:
                pids[m.group(1)] = int(m.group(2))
        assert set(pids) == {"sim_robot", "policy_node", "scripted_operator"}, "".join(log)
        os.kill(pids["policy_node"], signal.SIGKILL)
        rc = proc.wait(timeout=duration_s / 4)  # generous; the point is "not when the duration is over"
        while (line := lines.get(timeout=30.0)) is not None:
            log.append(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cleanup_fastdds_shm()
    text = "".join(log)
    assert rc == EXIT_CHILD, text
    assert "error: node policy_node was killed by SIGKILL (exit code -9)" in text, text
    # The dead node is not asked to deactivate (that waited out a 10 s timeout before), the robot stops first.
    assert "/policy_node: not deactivated: node policy_node was killed by SIGKILL" in text, text
    stops = [line for line in log if "[bringup] stopping " in line]
    assert stops[0].startswith("[bringup] stopping sim_robot (robot side"), text
    assert "scripted_operator" in stops[1], text
    assert "summary: sim_robot exit 0, policy_node exit -9, scripted_operator exit 0" in text, text
    assert not [name for name, pid in pids.items() if _pid_alive(pid)]
