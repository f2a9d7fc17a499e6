"""Velocity and effort commands respect the position limits (issue 11, item 2), checked by integrating the
chain's commands against a joint model, not by reading the chain's code.

- velocity: q + v·dt never leaves the limits from inside, and a joint already past a limit is never driven
  further out;
- effort: at or past a limit, no effort pushes further out (so a joint at rest there never moves further out).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_rl.safety import SafetyChain, SafetyConfig

PERIOD = 0.01
LOWER, UPPER = np.array([-1.0, -2.0]), np.array([1.0, 2.0])
VMAX, AMAX = np.array([1.0, 2.0]), np.array([10.0, 20.0])


def chain_for(iface: str) -> SafetyChain:
    cfg = SafetyConfig.for_joints(["j1", "j2"], iface, PERIOD, LOWER, UPPER, VMAX, AMAX, effort=[5.0, 5.0])
    return SafetyChain(cfg)


def run(chain: SafetyChain, t: float, command: Any, q: np.ndarray, v: np.ndarray | None = None) -> np.ndarray:
    r = chain.filter(command, now_s=t, joint_pos_rad=q, joint_vel_rad_s=v, observation_stamp_s=t, command_stamp_s=t)
    assert np.isfinite(r.action).all()
    return r.action


def outside(q: np.ndarray) -> np.ndarray:
    """How far each joint is past its limit (0 inside)."""
    return np.maximum(q - UPPER, 0.0) + np.maximum(LOWER - q, 0.0)


_commands = st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)).map(np.array), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(_commands, st.tuples(st.floats(-1.15, 1.15), st.floats(-2.15, 2.15)).map(np.array))
def test_velocity_commands_never_cross_or_push_further_past_a_limit(commands: list[Any], q0: np.ndarray) -> None:
    chain = chain_for("velocity")
    chain.reset(q0)
    q, t = q0.copy(), 0.0
    for u in commands:
        t += PERIOD
        v = run(chain, t, u, q)
        q_next = q + v * PERIOD  # an ideal velocity servo
        inside = outside(q) == 0.0
        assert (outside(q_next)[inside] <= 1e-12).all(), (q, v, q_next)  # never across within one period
        assert (outside(q_next) <= outside(q) + 1e-12).all(), (q, v, q_next)  # never further past
        q = q_next


@settings(max_examples=150, deadline=None)
@given(_commands, st.tuples(st.floats(-1.15, 1.15), st.floats(-2.15, 2.15)).map(np.array))
def test_outward_effort_at_or_past_a_limit_is_removed(commands: list[Any], q0: np.ndarray) -> None:
    chain = chain_for("effort")
    chain.reset(q0)
    q, qd, t = q0.copy(), np.zeros(2), 0.0
    inertia, damping = 1.0, 2.0
    for u in commands:
        t += PERIOD
        tau = run(chain, t, u, q, qd)
        at_upper, at_lower = q >= UPPER, q <= LOWER
        assert not (tau[at_upper] > 0).any() and not (tau[at_lower] < 0).any(), (q, tau)
        # A damped joint model (semi-implicit Euler), so the readings stay physically plausible.
        qd = qd + PERIOD * (tau - damping * qd) / inertia
        q = q + PERIOD * qd


def test_effort_from_rest_past_a_limit_never_moves_further_out() -> None:
    chain = chain_for("effort")
    q, qd, t = np.array([1.05, -2.05]), np.zeros(2), 0.0
    chain.reset(q)
    start = outside(q)
    for _ in range(100):
        t += PERIOD
        tau = run(chain, t, np.array([5.0, -5.0]), q, qd)  # pushing outward with the full effort
        qd = qd + PERIOD * (tau - 2.0 * qd)
        q = q + PERIOD * qd
        assert (outside(q) <= start + 1e-12).all()
    assert (outside(q) == start).all()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 2), min_size=20, max_size=120),
    st.lists(st.sampled_from([0.0005, 0.001, 0.005, 0.01]), min_size=20, max_size=120),
)
def test_stale_readings_near_a_limit_never_force_braking_beyond_the_acceleration_limit(
    lags: list[int], ticks_s: list[float]
) -> None:
    """Full speed toward a limit with readings up to two ticks old (two periods at most), and uneven ticks:
    the joint never crosses the limit, and every command changes by at most a_max·(its tick) — the stale reading
    does not hide how close the joint already is and then force an abrupt stop when a fresh one arrives."""
    chain = chain_for("velocity")
    q0 = np.array([0.85, 1.8])  # a few periods of full speed from the limits
    chain.reset(q0)
    history = [q0.copy()]  # the ideal joint's position at each tick
    q, t, v_prev = q0.copy(), 0.0, np.zeros(2)
    for k, (lag, tick_s) in enumerate(zip(lags, ticks_s, strict=False)):
        t += tick_s
        q = q + v_prev * tick_s  # the previous command acted until now
        history.append(q.copy())
        stale = history[max(0, len(history) - 1 - lag)]  # `lag` ticks old: at most lag·T
        v = run(chain, t, VMAX * 2.0, stale)
        assert (q + v * PERIOD <= UPPER + 1e-12).all(), (q, v)
        dt = min(tick_s, PERIOD) if k else PERIOD  # the chain's first step after a reset is one period
        assert (np.abs(v - v_prev) <= AMAX * dt * (1 + 1e-9) + 1e-12).all(), (v_prev, v, dt, lag)
        v_prev = v
