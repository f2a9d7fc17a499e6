"""The simulated ros2_control robot: ROS-free core, the node over real DDS on loopback, and its entry point."""

from __future__ import annotations

import gc
import itertools
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (pip install -e '.[ros]')")

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ros_nodes.core.sim_robot import FaultConfig, SimRobot  # noqa: E402
from ros_nodes.ros_env import cleanup_fastdds_shm, fastdds_profile_path, isolated_ros_env  # noqa: E402
from ros_nodes.sim_robot_node import COMMAND_QOS, SimRobotNode  # noqa: E402

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
PANDA = "robot_rl/PandaReach-v0"


# ---------------------------------------------------------------------------------------------- core (no ROS)
@pytest.fixture
def panda() -> Iterator[SimRobot]:
    robot = SimRobot(PANDA, episode_steps=400)
    yield robot
    robot.close()


def test_core_describes_the_robot(ros_env: int, panda: SimRobot) -> None:
    robot = panda.env.robot_interface()
    assert panda.joint_names == robot.joint_names
    assert panda.actuated_joints == robot.command.joints
    assert panda.command_interface == robot.command.ros2_control == "velocity"
    layout = {e.name: e.shape for e in robot.observation}
    snap = panda.step()
    assert list(snap.observations) == [k for k in layout if k not in ("joint_pos", "joint_vel")]
    for key, value in snap.observations.items():
        assert value.shape == layout[key]
    assert snap.positions.shape == snap.velocities.shape == (len(panda.joint_names),)
    assert snap.efforts.size == 0
    assert snap.time_s == pytest.approx(panda.control_dt_s)


def test_malformed_commands_are_rejected_counted_and_the_previous_one_held(ros_env: int, panda: SimRobot) -> None:
    good = np.full(7, 0.2)
    assert panda.apply_command(good)
    bad: list[Any] = [
        np.full(6, 0.2),
        np.full(8, 0.2),
        [np.nan] * 7,
        [0.1] * 6 + [np.inf],
        np.zeros((7, 1)),
        ["a"] * 7,
        [],
    ]
    for values in bad:
        assert not panda.apply_command(values)
    stats = panda.command_stats
    assert (stats.accepted, stats.rejected) == (1, len(bad))
    assert stats.rejected_by_reason == {"length": 4, "non_finite": 2, "malformed": 1}
    assert stats.last_reject_reason is not None and "7 values" in stats.last_reject_reason
    np.testing.assert_allclose(panda.current_command, good)
    q0 = panda.latest.positions.copy()
    for _ in range(5):
        snap = panda.step()
    assert np.all(np.isfinite(snap.positions))
    assert np.all(snap.positions > q0)  # the held +0.2 rad/s command kept moving every joint


def test_velocity_command_moves_joints_and_reset_returns_to_hold(ros_env: int, panda: SimRobot) -> None:
    q0 = panda.latest.positions.copy()
    v = np.array([0.3, -0.3, 0.3, 0.3, -0.3, 0.3, -0.3])
    panda.apply_command(v)
    for _ in range(10):  # 0.5 s
        snap = panda.step()
    moved = snap.positions - q0
    np.testing.assert_allclose(moved, v * 0.5, atol=0.05)
    panda.reset()
    assert not panda.has_command
    np.testing.assert_allclose(panda.current_command, 0.0)
    q1 = panda.latest.positions.copy()
    for _ in range(5):
        snap = panda.step()
    np.testing.assert_allclose(snap.positions, q1, atol=2e-3)  # hold means zero velocity


def test_position_interface_holds_then_tracks(ros_env: int) -> None:
    robot = SimRobot(PANDA, env_kwargs={"interface": "joint_position"})
    try:
        assert robot.command_interface == "position"
        q0 = robot.latest.positions.copy()
        np.testing.assert_allclose(robot.current_command, q0, atol=1e-9)  # hold = stay where it is
        for _ in range(5):
            snap = robot.step()
        np.testing.assert_allclose(snap.positions, q0, atol=1e-3)
        target = q0 + 0.1
        assert robot.apply_command(target)
        for _ in range(20):
            snap = robot.step()
        np.testing.assert_allclose(snap.positions, target, atol=0.01)
        # Out-of-range positions are clipped to the joint limits, and counted.
        assert robot.apply_command(np.full(7, 100.0))
        assert robot.command_stats.clipped == 1
        np.testing.assert_allclose(robot.current_command, robot.command_high)
    finally:
        robot.close()


def test_episode_end_needs_reset(ros_env: int) -> None:
    robot = SimRobot(PANDA, episode_steps=3)
    try:
        snaps = [robot.step() for _ in range(3)]
        assert [s.truncated for s in snaps] == [False, False, True]
        assert robot.episode_over and not snaps[-1].terminated
        with pytest.raises(RuntimeError, match="reset"):
            robot.step()
        snap = robot.reset()
        assert (snap.episode, snap.episode_step) == (1, 0)
        assert snap.time_s == pytest.approx(snaps[-1].time_s)  # sim time never runs backwards
    finally:
        robot.close()


def test_drop_rate_is_seeded_and_roughly_right(ros_env: int) -> None:
    def pattern(seed: int) -> list[bool]:
        robot = SimRobot(PANDA, faults=FaultConfig(drop_rate=0.3, seed=seed))
        try:
            return [robot.should_publish() for _ in range(2000)]
        finally:
            robot.close()

    a, b, c = pattern(1), pattern(1), pattern(2)
    assert a == b and a != c
    assert 0.26 < 1.0 - np.mean(a) < 0.34


def test_freeze_delay_and_stop_faults(ros_env: int) -> None:
    dt = 0.05
    robot = SimRobot(PANDA, faults=FaultConfig(freeze_after_s=0.2, stop_publishing_after_s=0.5))
    try:
        robot.apply_command(np.full(7, 0.3))
        out = []
        for _ in range(12):
            robot.step()
            out.append((robot.latest, robot.sensor_output()))
        live = [sensed for true, sensed in out if true.time_s < 0.2 - 1e-9]
        assert all(s is not None for s in live)
        frozen = [sensed for true, sensed in out if 0.2 - 1e-9 <= true.time_s < 0.5 - 1e-9]
        assert len(frozen) == 6 and all(s is frozen[0] for s in frozen)  # same values, same stamp
        assert frozen[0] is not None and frozen[0].time_s == pytest.approx(0.2)
        assert not np.allclose(out[9][0].positions, frozen[0].positions)  # while the robot really moved
        assert [sensed for true, sensed in out if true.time_s >= 0.5 - 1e-9] == [None] * 3
    finally:
        robot.close()

    delayed = SimRobot(PANDA, faults=FaultConfig(delay_s=0.1))
    try:
        delayed.apply_command(np.full(7, 0.3))
        for _ in range(6):
            delayed.step()
        sensed = delayed.sensor_output()
        assert sensed is not None
        assert sensed.time_s == pytest.approx(delayed.time_s - 2 * dt)
        assert not np.allclose(sensed.positions, delayed.latest.positions)
    finally:
        delayed.close()

    with pytest.raises(ValueError, match="drop_rate"):
        FaultConfig(drop_rate=1.5)
    with pytest.raises(ValueError, match="delay_s"):
        FaultConfig(delay_s=float("nan"))


# ---------------------------------------------------------------------------------------------- node in-process
class Graph:
    """One rclpy context with a test node; the sim_robot node joins the same SingleThreadedExecutor."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.probe = Node("probe", context=self.context)
        self.executor.add_node(self.probe)
        self.nodes: list[Node] = [self.probe]

    def add_sim_robot(self, **params: Any) -> SimRobotNode:
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        node = SimRobotNode(context=self.context, parameter_overrides=overrides)
        self.executor.add_node(node)
        self.nodes.append(node)
        return node

    def collect(self, msg_type: Any, topic: str, qos: Any = qos_profile_sensor_data) -> list[Any]:
        got: list[Any] = []
        self.probe.create_subscription(msg_type, topic, got.append, qos)
        return got

    def spin_until(self, cond: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if cond():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return cond()

    def close(self) -> None:
        for node in reversed(self.nodes):
            self.executor.remove_node(node)
            node.destroy_node()
        self.executor.shutdown()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def graph(ros_env: int) -> Iterator[Graph]:
    g = Graph()
    try:
        yield g
    finally:
        g.close()


def test_node_publishes_joint_states_and_follows_velocity_commands(graph: Graph) -> None:
    node = graph.add_sim_robot(episode_steps=1000)
    states = graph.collect(JointState, "/joint_states")
    ee = graph.collect(Float64MultiArray, "/observations/ee_pos")
    success = graph.collect(Bool, "/robot_rl/is_success", 10)
    assert graph.spin_until(lambda: len(states) >= 3 and len(ee) >= 1 and len(success) >= 1)
    first = states[-1]
    assert list(first.name) == list(node.robot.joint_names)
    assert len(first.position) == len(first.velocity) == 7 and len(first.effort) == 0
    assert first.header.stamp.sec > 0  # wall-clock stamps when /clock is off
    assert len(ee[-1].data) == 3
    assert node.command_topic == "velocity_controller/commands"

    cmd = graph.probe.create_publisher(Float64MultiArray, "/velocity_controller/commands", COMMAND_QOS)
    q0 = np.array(first.position)
    v = np.array([0.4, 0.4, -0.4, 0.4, 0.4, -0.4, 0.4])

    def moved() -> bool:
        cmd.publish(Float64MultiArray(data=v.tolist()))
        return bool(
            np.all(np.sign(np.array(states[-1].position) - q0) * np.sign(v) * 1.0 > 0)
            and np.all(np.abs(np.array(states[-1].position) - q0) > 0.05)
        )

    assert graph.spin_until(moved), f"joints did not move: {np.array(states[-1].position) - q0}"
    assert node.robot.command_stats.accepted >= 1 and node.rejected_commands == 0


def test_node_shuffled_joint_order_and_malformed_commands(graph: Graph) -> None:
    node = graph.add_sim_robot(shuffle_joint_order=True, episode_steps=1000)
    states = graph.collect(JointState, "/joint_states")
    assert graph.spin_until(lambda: len(states) >= 8)
    orders = {tuple(m.name) for m in states}
    assert len(orders) > 1
    assert all(sorted(o) == sorted(node.robot.joint_names) for o in orders)
    # By name the values are consistent: the robot holds still, so every message says the same per joint.
    by_name = [dict(zip(m.name, m.position)) for m in states]
    for joint in node.robot.joint_names:
        np.testing.assert_allclose([d[joint] for d in by_name], by_name[0][joint], atol=1e-3)

    cmd = graph.probe.create_publisher(Float64MultiArray, "/velocity_controller/commands", COMMAND_QOS)
    bad = [[0.1] * 3, [float("nan")] * 7, [float("inf")] * 7, [], [1e308] * 8]
    sent = 0

    def all_rejected() -> bool:
        nonlocal sent
        if sent < len(bad):
            cmd.publish(Float64MultiArray(data=bad[sent]))
            sent += 1
        return node.rejected_commands >= len(bad)

    assert graph.spin_until(all_rejected)
    steps = node.steps
    n_states = len(states)
    assert graph.spin_until(lambda: node.steps > steps + 3 and len(states) > n_states + 3)  # still alive
    assert node.robot.command_stats.accepted == 0
    assert np.all(np.isfinite(states[-1].position))


def test_node_clock_episode_done_and_reset_service(graph: Graph) -> None:
    node = graph.add_sim_robot(publish_clock=True, episode_steps=5)
    clock = graph.collect(Clock, "/clock", 10)
    done = graph.collect(Bool, "/robot_rl/episode_done", 10)
    terminated = graph.collect(Bool, "/robot_rl/terminated", 10)
    states = graph.collect(JointState, "/joint_states")
    assert graph.spin_until(lambda: len(clock) >= 8 and any(m.data for m in done) and len(states) >= 3)
    times = [m.clock.sec + 1e-9 * m.clock.nanosec for m in clock]
    assert all(b > a for a, b in itertools.pairwise(times))  # sim time keeps running across auto-resets
    assert times[0] > 0.0
    stamp = states[-1].header.stamp
    assert stamp.sec + 1e-9 * stamp.nanosec < 60.0  # stamps are sim time when /clock is published
    flags = [m.data for m in done]
    i = flags.index(True)
    assert flags[max(0, i - 3) : i] == [False] * min(i, 3)
    assert terminated and not any(m.data for m in terminated)  # a reach time limit is a truncation, not terminal

    client = graph.probe.create_client(Trigger, "/sim_robot/reset")
    assert client.wait_for_service(timeout_sec=5.0)
    episodes = node.robot.latest.episode
    future = client.call_async(Trigger.Request())
    assert graph.spin_until(future.done)
    result = future.result()
    assert result is not None and result.success
    assert node.robot.latest.episode >= episodes + 1


def test_node_with_faults_stops_publishing(graph: Graph) -> None:
    states = graph.collect(JointState, "/joint_states")
    node = graph.add_sim_robot(stop_publishing_after_s=0.3, episode_steps=1000, drop_rate=0)  # ints are accepted
    assert graph.spin_until(lambda: node.robot.time_s > 0.6)
    assert node.published == 5  # the periods ending at 0.05 ... 0.25 s; from 0.3 s on the sensor is silent
    n = len(states)
    assert n <= 5  # (some may precede discovery)
    assert graph.spin_until(lambda: node.robot.time_s > 1.0)
    assert len(states) == n and node.published == 5
    assert node.steps >= 20  # the robot itself keeps running


# ---------------------------------------------------------------------------------------------- entry point
def test_entry_point_runs_as_a_process_and_exits_on_sigint(ros_env: int) -> None:
    proc = _node_process(isolated_ros_env(domain_id=ros_env), "episode_steps:=1000", "shuffle_joint_order:=true")
    g: Graph | None = None
    try:
        g = Graph()
        states = g.collect(JointState, "/joint_states")
        assert g.spin_until(lambda: len(states) >= 3 or proc.poll() is not None, timeout_s=30.0), "no joint_states"
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert sorted(states[-1].name) == sorted(f"panda_joint{i}" for i in range(1, 8))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out
        assert "Traceback" not in out, out
    finally:
        if g is not None:
            g.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert cleanup_fastdds_shm() >= 0


def _node_process(env: dict[str, str], *params: str) -> subprocess.Popen[str]:
    env = dict(env)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "ros_nodes.sim_robot_node", "--ros-args"]
    for p in params:
        cmd += ["-p", p]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _shm_files_mapped_by(pid: int) -> set[str]:
    """Fast DDS shm files `pid` maps: `fastdds_*` (Fast DDS 3, Kilted) or `fastrtps_*` (Fast DDS 2.14, Jazzy)."""
    text = Path(f"/proc/{pid}/maps").read_text()
    lines = [line for line in text.splitlines() if "/dev/shm/fastdds" in line or "/dev/shm/fastrtps" in line]
    return {line.split("/dev/shm/", 1)[1].split(" ")[0] for line in lines}


# ---------------------------------------------------------------------------------------------- isolation helpers
def test_isolated_env_is_loopback_only_and_leaves_the_base_alone(ros_env: int) -> None:
    base = {"PATH": "/bin", "ROS_DOMAIN_ID": "0", "ROS_STATIC_PEERS": "10.0.0.1", "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}
    env = isolated_ros_env(domain_id=42, base=base)
    assert env["ROS_DOMAIN_ID"] == "42" and env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert env["RMW_IMPLEMENTATION"] == "rmw_fastrtps_cpp" and env["PATH"] == "/bin"
    assert "ROS_STATIC_PEERS" not in env and "FASTDDS_BUILTIN_TRANSPORTS" not in env
    assert base["ROS_DOMAIN_ID"] == "0"  # a copy
    assert 1 <= int(isolated_ros_env()["ROS_DOMAIN_ID"]) <= 100
    assert os.environ["ROS_DOMAIN_ID"] == str(ros_env)
    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(fastdds_profile_path()).getroot()
    udp = [t for t in root.iterfind(".//d:transport_descriptor", ns) if t.findtext("d:type", namespaces=ns) == "UDPv4"]
    assert [a.text for a in udp[0].iterfind("d:interfaceWhiteList/d:address", ns)] == ["127.0.0.1"]
    assert root.findtext(".//d:participant/d:rtps/d:useBuiltinTransports", namespaces=ns) == "false"
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID"):
        isolated_ros_env(domain_id=300)


def test_shm_cleanup_removes_a_killed_nodes_files_but_not_live_ones(ros_env: int) -> None:
    # Participants of earlier tests in this process may still be closing (unlinking, then unmapping their files):
    # they would look like live files that vanish. Let them finish first.
    end = time.monotonic() + 10.0
    while _shm_files_mapped_by(os.getpid()) and time.monotonic() < end:
        gc.collect()
        time.sleep(0.1)
    assert not _shm_files_mapped_by(os.getpid()), "an earlier test left a Fast DDS participant open"
    proc = _node_process(isolated_ros_env(domain_id=ros_env))
    g: Graph | None = None
    try:
        g = Graph()
        states = g.collect(JointState, "/joint_states")
        assert g.spin_until(lambda: len(states) >= 2 or proc.poll() is not None, timeout_s=30.0), "no joint_states"
        theirs = _shm_files_mapped_by(proc.pid)
        ours = _shm_files_mapped_by(os.getpid())  # includes the node's segment: we read its samples from it
        only_theirs = theirs - ours  # e.g. the ports the node listens on (Fast DDS 3, Kilted)
        # Fast DDS 2.14 (Jazzy, `fastrtps_*` files) maps every shm file of its peers: there `only_theirs` is empty
        # and the removal checks below are vacuous (the live-files-untouched ones still hold).
        fastdds2 = all(f.startswith("fastrtps_") for f in theirs)
        assert theirs and ours and (only_theirs or fastdds2)
        cleanup_fastdds_shm(min_age_s=0.0)  # may remove leftovers of earlier dead processes, never live ones
        assert all(Path("/dev/shm", f).exists() for f in theirs | ours)
        proc.kill()  # SIGKILL: Fast DDS gets no chance to unlink its shared memory
        proc.wait(timeout=10)
        assert all(Path("/dev/shm", f).exists() for f in only_theirs), "expected leftovers of the killed node"
        assert cleanup_fastdds_shm(min_age_s=0.0) >= len(only_theirs)
        assert not any(Path("/dev/shm", f).exists() for f in only_theirs)
        assert all(Path("/dev/shm", f).exists() for f in ours)  # what the live participant maps is untouched
        n = len(states)
        node = g.add_sim_robot(episode_steps=1000)  # and the live participant still works
        # (a sample the killed node sent may still arrive: wait for the new node's own samples too)
        assert g.spin_until(lambda: len(states) >= n + 2 and node.published >= 2), (len(states) - n, node.published)
    finally:
        if g is not None:
            g.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
