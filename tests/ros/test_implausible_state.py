"""Issue 11's reproductions over ROS: physically impossible but well-formed joint states into a running policy node.

A probe publishes crafted `JointState`s (10 rad and 50 rad on a joint limited to ±2.9 rad, a stamp going
backwards, alternating clocks) between plausible ones, and an independent checker — limits read straight from the
Panda URDF with ElementTree, acceleration by the documented default of 10 × v_max per second — judges every
published command: finite, inside the position limits, and no step between consecutive commands beyond the
velocity and acceleration limits. The node must hold through the implausible readings and say ERROR on
/diagnostics.
"""

from __future__ import annotations

import itertools
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

import pybullet_data  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from rosutil import ros_context, spin_for  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402

from ros_nodes.policy_node import PolicyNode  # noqa: E402

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
OBS_SIZES = {"ee_pos": 3, "ee_quat": 4, "target_pos": 3, "target_rel": 3}


def urdf_limits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower rad, upper rad, velocity rad/s) of the Panda's arm joints, read from the URDF itself."""
    root = ET.parse(os.path.join(pybullet_data.getDataPath(), "franka_panda", "panda.urdf")).getroot()
    by_name = {j.get("name"): j.find("limit") for j in root.iter("joint")}
    lim = [by_name[j] for j in JOINTS]
    return tuple(np.array([float(x.get(k)) for x in lim]) for k in ("lower", "upper", "velocity"))  # type: ignore[return-value, union-attr, arg-type]


def check_commands(commands: list[np.ndarray], received_s: list[float], period_s: float) -> list[str]:
    """Every violation of the URDF limits in a published command stream (empty: none).

    A tick moves a target at most v_max·c and changes its velocity by at most a_max·c, with c = min(time since
    the previous tick, T): so |Δ_k| ≤ v_max·T exactly, and |Δ_k − Δ_(k−1)| ≤ a_max·T² + v_max·|c_k − c_(k−1)|.
    The tick times are estimated from the receive times, with 10 ms allowed for delivery jitter.
    """
    lower, upper, vmax = urdf_limits()
    amax = 10.0 * vmax  # the documented default when the description gives no acceleration limits
    tol = 1e-6
    bad: list[str] = []
    prev_step: np.ndarray | None = None
    c = [period_s] + [min(b - a, period_s) for a, b in itertools.pairwise(received_s)]
    for k, cmd in enumerate(commands):
        if not np.isfinite(cmd).all():
            bad.append(f"#{k}: non-finite {cmd}")
            continue
        if ((cmd < lower - tol) | (cmd > upper + tol)).any():
            bad.append(f"#{k}: outside the position limits {cmd}")
        if k == 0:
            continue
        step = cmd - commands[k - 1]
        if (np.abs(step) > vmax * period_s + tol).any():
            bad.append(f"#{k}: step {np.abs(step).max():.4g} rad beyond v_max·T")
        # A stop (the same target again) is always allowed; otherwise the change of step is bounded by a·T².
        jitter_s = abs(c[k] - c[k - 1]) + 0.01
        allowed = amax * period_s**2 + vmax * jitter_s + tol
        if prev_step is not None and step.any() and (np.abs(step - prev_step) > allowed).any():
            bad.append(f"#{k}: step change {np.abs(step - prev_step).max():.4g} rad beyond a_max·T² (+ jitter)")
        prev_step = step
    return bad


def _stamp(t: float) -> Time:
    sec = int(t)
    return Time(sec=sec, nanosec=int((t - sec) * 1e9))


def test_implausible_joint_states_hold_and_never_step_the_target(ros_env: int, reach_position_bundle: Path) -> None:
    commands: list[np.ndarray] = []
    received: list[float] = []
    diags: list[DiagnosticStatus] = []
    with ros_context() as (ctx, executor):
        policy = PolicyNode(
            context=ctx, parameter_overrides=[Parameter("bundle_dir", value=str(reach_position_bundle))]
        )
        probe = rclpy.create_node("implausible_probe", context=ctx)
        js = probe.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        done = probe.create_publisher(Bool, "/robot_rl/episode_done", RELIABLE)
        obs = {
            k: probe.create_publisher(Float64MultiArray, f"/observations/{k}", qos_profile_sensor_data)
            for k in OBS_SIZES
        }
        probe.create_subscription(
            Float64MultiArray,
            "/position_controller/commands",
            lambda m: (commands.append(np.array(m.data, dtype=np.float64)), received.append(time.monotonic())),
            RELIABLE,
        )
        probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diags.extend(m.status), 10)
        executor.add_node(policy)
        executor.add_node(probe)
        period = 1.0 / policy._dep.control_hz if policy._dep else 0.05
        clock = probe.get_clock()

        def publish(q: np.ndarray, stamp_s: float | None = None) -> None:
            now = clock.now().nanoseconds * 1e-9
            msg = JointState(name=JOINTS, position=q.tolist(), velocity=[0.0] * 7)
            msg.header.stamp = _stamp(now if stamp_s is None else stamp_s)
            js.publish(msg)
            for k, pub in obs.items():
                pub.publish(Float64MultiArray(data=[0.1] * OBS_SIZES[k]))

        def phase(seconds: float, make: Any) -> tuple[int, int]:
            start = len(commands)
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                publish(*make(i))
                i += 1
                spin_for(executor, 0.01)
            return start, len(commands)

        assert policy.trigger_configure() == TransitionCallbackReturn.SUCCESS, policy._last_error
        assert policy.trigger_activate() == TransitionCallbackReturn.SUCCESS
        phase(1.0, lambda i: (HOME,))  # plausible: commands flow
        far = HOME.copy()
        far[0] = 10.0

        # 10 rad on a ±2.9 rad joint, with episode roll-overs (which once re-anchored the target at the reading).
        def far_with_rollovers(i: int) -> tuple[np.ndarray]:
            if i % 20 == 10:
                done.publish(Bool(data=True))  # the robot ended the episode: the node rolls over at its next tick
            return (far,)

        a, b = phase(1.0, far_with_rollovers)
        held_10 = commands[a + 2 : b]  # after a tick or two in flight, every command is the same hold
        very_far = HOME.copy()
        very_far[0] = 50.0
        # A flood: 50 rad readings interleaved with true ones.
        phase(1.0, lambda i: (very_far if i % 2 else HOME,))
        phase(0.5, lambda i: (HOME,))
        t_back = clock.now().nanoseconds * 1e-9 - 30.0
        phase(0.5, lambda i: (HOME, t_back + 0.01 * i if i % 3 else t_back - 100.0))  # stamps going backwards
        wall = time.time()
        phase(1.0, lambda i: (HOME, 1000.0 + 0.01 * i if i % 2 else wall + 0.01 * i))  # alternating clocks
        phase(0.5, lambda i: (HOME,))
        rollovers = len(policy.episodes)
        assert policy.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        spin_for(executor, 0.2)

    assert len(commands) > 40, len(commands)
    assert len(received) == len(commands) and rollovers >= 2, rollovers
    assert check_commands(commands, received, period) == []
    assert len(held_10) >= 5 and all(np.array_equal(c, held_10[0]) for c in held_10), held_10[:3]
    assert abs(held_10[0][0]) < 0.5  # held at the last commanded target, not re-anchored at the reading
    errors = [s for s in diags if s.level == DiagnosticStatus.ERROR and "plausibility" in s.name]
    assert errors, sorted({s.name for s in diags})
    # The header stamps themselves are judged (per source), not only the arrival times: the stamp faults are
    # counted on /diagnostics (a count, not a level: a 1 Hz snapshot can fall between the fault's ticks).
    stamp = [s for s in diags if s.name.endswith("safety/plausibility_stamp")]
    stamp_counts = [int(v.value) for s in stamp for v in s.values if v.key == "count"]
    assert stamp_counts and max(stamp_counts) > 0, stamp_counts
