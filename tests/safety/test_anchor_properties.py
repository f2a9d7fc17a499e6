"""Rate and acceleration limits are relative to the last command actually sent (issue 11, item 1), and a sensor
fault is a hold, never a re-anchoring.

Property: over random sequences of commands, joint readings (plausible and implausible: 10 rad, 50 rad, jumps,
wild velocities), episode roll-overs and resets, every output is either a stop (position: the previous output;
velocity: zero) or within the velocity and acceleration limits relative to the previous *output*.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_rl.safety import SafetyChain, SafetyConfig
from robot_rl.safety.diagnostics import ERROR

PERIOD = 0.01
LOWER, UPPER = np.array([-2.9, -1.0]), np.array([2.9, 1.5])
VMAX, AMAX = np.array([1.0, 2.0]), np.array([10.0, 20.0])
TOL = 1e-9


def config(iface: str, **kw: Any) -> SafetyConfig:
    return SafetyConfig.for_joints(
        ["j1", "j2"], iface, PERIOD, LOWER, UPPER, VMAX, AMAX, effort=[5.0, 5.0], position_margin_rad=0.01, **kw
    )


def filter_at(chain: SafetyChain, t: float, command: Any, q: Any, v: Any = None, stamp: Any = "now") -> Any:
    return chain.filter(
        command,
        now_s=t,
        joint_pos_rad=q,
        joint_vel_rad_s=v,
        observation_stamp_s=t,
        command_stamp_s=t,
        measurement_stamp_s=t if stamp == "now" else stamp,
    )


_finite = st.floats(-60.0, 60.0, allow_nan=False)
_vec = st.tuples(_finite, _finite).map(np.array)
_reading = st.one_of(
    st.just("track"),  # the robot where the last command put it (plausible)
    st.sampled_from([10.0, 50.0, -10.0]).map(lambda x: np.array([x, 0.0])),  # far outside the limits
    _vec,  # anything finite, often a jump
)
_op = st.one_of(
    st.tuples(st.just("step"), _vec, _reading, st.one_of(st.none(), _vec), st.sampled_from(["now", "back"])),
    st.tuples(st.just("reset"), _reading),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["position", "velocity"]), st.lists(_op, min_size=1, max_size=40), st.floats(-0.5, 0.5))
def test_no_output_steps_beyond_the_limits_relative_to_the_previous_output(
    iface: str, ops: list[Any], q0: float
) -> None:
    chain = SafetyChain(config(iface))
    q_robot = np.array([q0, q0])
    chain.reset(q_robot)  # activation at a plausible reading
    t = 0.0
    # Position: the anchor of the reset is the first "previous output" (the robot rests there).
    prev_out: np.ndarray | None = q_robot.copy() if iface == "position" else None
    sent = False
    v_prev = np.zeros(2)  # the velocity the previous output implied (position) or was (velocity)
    for op in ops:
        raw = op[1] if op[0] == "reset" else op[2]
        reading = q_robot.copy() if isinstance(raw, str) else raw
        if op[0] == "reset":
            chain.reset(reading)  # episode roll-over, reset or hand-back
            plausible = bool(((reading >= LOWER - 0.2) & (reading <= UPPER + 0.2)).all())
            if not sent and plausible and iface == "position":  # nothing sent yet: anchors at the reading
                prev_out = q_robot = np.clip(reading, LOWER + 0.01, UPPER - 0.01)
            continue
        sent = True
        _, command, _, vel, stamp_kind = op
        t += PERIOD
        stamp = t if stamp_kind == "now" else t - 5.0
        r = filter_at(chain, t, command, reading, vel, stamp)
        a = r.action
        assert np.isfinite(a).all()
        if iface == "position":
            assert ((a >= LOWER) & (a <= UPPER)).all()
            if prev_out is not None:
                step_v = (a - prev_out) / PERIOD
                if step_v.any():  # not a stop: within the velocity and acceleration limits of the last output
                    assert (np.abs(step_v) <= VMAX * (1 + 1e-9) + TOL).all(), (prev_out, a, r)
                    assert (np.abs(step_v - v_prev) <= AMAX * PERIOD * (1 + 1e-9) + 1e-6).all(), (prev_out, a, r)
                v_prev = step_v
            prev_out = a.copy()
            q_robot = a.copy()  # an ideal position servo
        else:
            assert (np.abs(a) <= VMAX).all()
            if a.any() and "position_limit" not in r.changed_by:  # braking before a limit wins over accel
                assert (np.abs(a - v_prev) <= AMAX * PERIOD * (1 + 1e-9) + 1e-9).all(), (v_prev, a, r)
            v_prev = a.copy()
            q_robot = q_robot + a * PERIOD


def test_rollover_after_an_implausible_reading_does_not_re_anchor() -> None:
    """The issue's reproduction: 10 rad read on a ±2.9 rad joint, then a roll-over, must not step the target."""
    chain = SafetyChain(config("position"))
    chain.reset(np.zeros(2))
    t = PERIOD
    first = filter_at(chain, t, np.array([0.005, 0.0]), np.zeros(2))
    assert not first.held
    t += PERIOD
    held = filter_at(chain, t, np.array([0.01, 0.0]), np.array([10.0, 0.0]))
    assert held.held and held.changed_by[0] == "plausibility_position"
    np.testing.assert_array_equal(held.action, first.action)  # at the last commanded target
    chain.reset(np.array([10.0, 0.0]))  # roll-over while the reading is implausible
    for _ in range(5):
        t += PERIOD
        r = filter_at(chain, t, np.array([2.9, 0.0]), np.array([10.0, 0.0]))
        assert r.held
        np.testing.assert_array_equal(r.action, first.action)
    counters = chain.counters
    assert counters["plausibility_position"] == 6 and counters["held"] == 6


def test_recovery_needs_n_consecutive_plausible_readings() -> None:
    chain = SafetyChain(config("position", plausibility_recovery_readings=3))
    chain.reset(np.zeros(2))
    t = PERIOD
    filter_at(chain, t, np.zeros(2), np.zeros(2))
    t += PERIOD
    assert filter_at(chain, t, np.zeros(2), np.array([50.0, 0.0])).held
    # Back to the true reading: the jump from 50 rad is a fault too, then 3 plausible readings are needed.
    held_by = []
    for _ in range(5):
        t += PERIOD
        r = filter_at(chain, t, np.zeros(2), np.zeros(2))
        held_by.append(r.changed_by[0] if r.held else "")
    assert held_by == ["plausibility_jump", "plausibility", "plausibility", "", ""]


def test_alternating_clocks_hold_and_never_move_the_target() -> None:
    chain = SafetyChain(config("position"))
    chain.reset(np.zeros(2))
    t = PERIOD
    base = filter_at(chain, t, np.zeros(2), np.zeros(2), stamp=1000.0)
    for i in range(20):
        t += PERIOD
        stamp = 1000.0 + t if i % 2 else 1.7e9 + t  # sim time and wall time in turn
        r = filter_at(chain, t, np.array([2.9, 1.0]), np.zeros(2), stamp=stamp)
        assert r.held and r.changed_by[0] in ("plausibility_stamp", "plausibility")
        np.testing.assert_array_equal(r.action, base.action)
    assert chain.counters["plausibility_stamp"] == 20


def test_a_velocity_beyond_the_limits_holds_zero_on_the_velocity_interface() -> None:
    chain = SafetyChain(config("velocity"))
    chain.reset(np.zeros(2))
    r = filter_at(chain, PERIOD, np.array([0.05, 0.0]), np.zeros(2), np.array([0.0, 9.0]))
    assert r.held and r.changed_by == ("plausibility_velocity",) and not r.action.any()


def test_sensor_faults_are_errors_on_diagnostics() -> None:
    chain = SafetyChain(config("position"))
    chain.reset(np.zeros(2))
    filter_at(chain, PERIOD, np.zeros(2), np.array([10.0, 0.0]))
    entries = {e.name: e for e in chain.diagnostics()}
    entry = entries["safety/plausibility_position"]
    assert entry.level == ERROR, entry
    assert "j1 reads 10 rad" in entry.message and entry.values["count"] == "1"


def test_a_never_anchored_chain_does_not_anchor_at_an_implausible_reading() -> None:
    chain = SafetyChain(config("position"))
    chain.reset(np.array([10.0, 0.0]))  # activation while the sensor reads nonsense
    r = filter_at(chain, PERIOD, np.zeros(2), np.array([10.0, 0.0]))
    assert r.held
    # Later plausible readings anchor at the true position, not at the clipped 10 rad (2.89 rad).
    t = PERIOD
    for _ in range(4):
        t += PERIOD
        r = filter_at(chain, t, np.array([0.001, 0.0]), np.array([0.0, 0.0]))
    assert not r.held and abs(r.action[0]) < 0.01
