"""Scripted behaviour of the chain: watchdogs, e-stop latch, workspace box, hold semantics, counters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from robot_rl.safety import LINK_NAMES, SafetyChain, SafetyConfig

PERIOD = 0.01


def config(iface: str = "position", **kw: Any) -> SafetyConfig:
    return SafetyConfig.for_joints(
        ["j1", "j2"], iface, PERIOD, [-1.0, -2.0], [1.0, 2.0], [1.0, 2.0], effort=[5.0, 5.0], **kw
    )


class Clock:
    """Drives a chain with a fake clock: fresh stamps unless told otherwise."""

    def __init__(self, chain: SafetyChain, q: np.ndarray | None = None) -> None:
        self.chain, self.now = chain, 0.0
        self.q = np.zeros(chain.config.n_joints) if q is None else q

    def step(self, command: Any, *, obs_stamp: Any = "fresh", cmd_stamp: Any = "fresh", dt: float = PERIOD) -> Any:
        self.now += dt
        return self.chain.filter(
            command,
            now_s=self.now,
            joint_pos_rad=self.q,
            joint_vel_rad_s=None,
            observation_stamp_s=self.now if obs_stamp == "fresh" else obs_stamp,
            command_stamp_s=self.now if cmd_stamp == "fresh" else cmd_stamp,
        )


def test_reason_format_and_position_clip() -> None:
    chain = SafetyChain(config())
    chain.reset(np.array([0.0, 1.999]))
    clock = Clock(chain, np.array([0.0, 1.999]))
    r = clock.step(np.array([0.0, 2.9]))
    # Clipped to the limit, then slowed so that it can still brake before it (one reason per link).
    assert r.changed_by == ("position_limit",) and len(r.reasons) == 1
    assert r.reasons[0].startswith("position_limit: j2 2.9 -> 2 rad; braking: j2 0.1 -> 0.0828")
    assert not r.held and 1.999 < r.action[1] < 2.0


def test_stale_observation_holds_and_resumes_only_on_a_newer_stamp() -> None:
    chain = SafetyChain(config())
    chain.reset(np.zeros(2))
    clock = Clock(chain)
    u = np.array([0.001, 0.0])
    assert not clock.step(u).held
    frozen = clock.now
    for _ in range(3):  # within 3 periods: still fresh
        assert not clock.step(u, obs_stamp=frozen).held
    r = clock.step(u, obs_stamp=frozen)
    assert r.held and r.changed_by == ("observation_watchdog",) and "old" in r.reasons[0]
    # The clock jumps back: the frozen stamp looks young again, but it is the stamp that tripped the watchdog.
    clock.now = frozen
    r = clock.step(u, obs_stamp=frozen)
    assert r.held and "clock step" in r.reasons[0]
    r = clock.step(u, obs_stamp=frozen)
    assert r.held and "newer than" in r.reasons[0]
    r = clock.step(u)  # a genuinely new observation
    assert not r.held


def test_no_observation_ever_holds() -> None:
    chain = SafetyChain(config())
    chain.reset(np.zeros(2))
    clock = Clock(chain)
    for stamp in (None, math.nan, "0.0", math.inf):
        r = clock.step(np.zeros(2), obs_stamp=stamp)
        assert r.held and r.changed_by == ("observation_watchdog",)


def test_command_watchdog() -> None:
    chain = SafetyChain(config(command_timeout_s=0.1))
    chain.reset(np.zeros(2))
    clock = Clock(chain)
    u = np.array([0.001, 0.0])
    r = clock.step(u, cmd_stamp=None)
    assert r.held and r.changed_by == ("command_watchdog",)
    r = clock.step(u, cmd_stamp=clock.now + PERIOD - 0.2)
    assert r.held and "old" in r.reasons[0]
    r = clock.step(u, cmd_stamp=clock.now + PERIOD - 0.05)
    assert not r.held


def test_clock_faults_hold() -> None:
    chain = SafetyChain(config())
    chain.reset(np.zeros(2))
    clock = Clock(chain)
    assert not clock.step(np.zeros(2)).held
    r = clock.step(np.zeros(2), dt=0.0)
    assert r.held and "clock step" in r.reasons[0]
    r = chain.filter(
        np.zeros(2), now_s=math.nan, joint_pos_rad=None, joint_vel_rad_s=None, observation_stamp_s=0, command_stamp_s=0
    )
    assert r.held and "now_s" in r.reasons[0]


def test_estop_latch_release_enable() -> None:
    chain = SafetyChain(config())
    chain.reset(np.zeros(2))
    clock = Clock(chain)
    u = np.array([0.001, 0.0])
    assert chain.motion_enabled and not chain.estop_engaged
    chain.engage_estop("operator pressed the button")
    assert chain.estop_engaged and not chain.motion_enabled
    for _ in range(3):  # latched: fresh commands do not release it
        r = clock.step(u)
        assert r.held and r.changed_by == ("estop",) and "operator pressed" in r.reasons[0]
    with pytest.raises(RuntimeError, match="still engaged"):
        chain.enable()
    assert chain.diagnostics()[0].level == 2
    chain.release_estop()
    assert not chain.estop_engaged and not chain.motion_enabled
    r = clock.step(u)
    assert r.held and r.reasons == ("estop: released, waiting for enable",)
    assert chain.diagnostics()[0].level == 1
    chain.enable()
    assert chain.motion_enabled
    assert not clock.step(u).held
    chain.reset(np.zeros(2))  # reset never clears an engaged e-stop
    chain.engage_estop("again")
    chain.reset(np.zeros(2))
    assert chain.estop_engaged


def two_link_fk(q: np.ndarray) -> np.ndarray:
    """Planar 2-link arm, 1 m links, in the x-y plane (m)."""
    return np.array([math.cos(q[0]) + math.cos(q[0] + q[1]), math.sin(q[0]) + math.sin(q[0] + q[1]), 0.0])


BOX = {"workspace_lower_m": (-2.0, -2.0, -0.1), "workspace_upper_m": (1.5, 2.0, 0.1)}


def test_workspace_box_position_interface() -> None:
    chain = SafetyChain(config(**BOX), two_link_fk)
    q = np.array([0.0, 1.2])  # x = 1 + cos(1.2) = 1.36: inside
    chain.reset(q)
    clock = Clock(chain, q)
    r = clock.step(q.copy())
    assert not r.held
    q_out = np.array([0.0, 1.19])
    r = clock.step(q_out)
    assert not r.held and two_link_fk(r.action)[0] <= 1.5
    # Walk toward the stretched arm (x = 2): the chain holds the last target once the box would be left.
    last = r.action
    for k in range(200):
        r = clock.step(np.array([0.0, 1.19 - 0.01 * (k + 1)]))
        if r.held:
            break
        last = r.action
    assert r.held and r.changed_by == ("workspace",) and "x " in r.reasons[0] and "> 1.5" in r.reasons[0]
    np.testing.assert_array_equal(r.action, last)
    assert two_link_fk(last)[0] <= 1.5


def test_workspace_box_velocity_interface_and_failing_fk() -> None:
    chain = SafetyChain(config("velocity", **BOX), two_link_fk)
    q = np.array([0.0, 1.0])  # x = 1.54: outside already, any motion is refused
    clock = Clock(chain, q)
    r = clock.step(np.array([0.0, -0.5]))
    assert r.held and r.changed_by == ("workspace",) and not r.action.any()

    def broken(q: np.ndarray) -> np.ndarray:
        raise ZeroDivisionError("bad FK")

    chain = SafetyChain(config(**BOX), broken)
    chain.reset(np.zeros(2))
    r = Clock(chain).step(np.zeros(2))
    assert r.held and "forward kinematics failed" in r.reasons[0]


def test_fk_required_exactly_with_a_box() -> None:
    with pytest.raises(ValueError, match="forward_kinematics"):
        SafetyChain(config(**BOX))
    with pytest.raises(ValueError, match="no workspace box"):
        SafetyChain(config(), two_link_fk)


def test_hold_action_per_interface() -> None:
    chain = SafetyChain(config())
    np.testing.assert_array_equal(chain.hold_action(None), [0.0, 0.0])  # midpoint of the limits
    np.testing.assert_array_equal(chain.hold_action(np.array([1.1, -0.5])), [1.0, -0.5])  # measured, clipped
    # 3 rad on a ±1 rad joint is a sensor fault (beyond the 0.2 rad plausibility margin): never a target.
    np.testing.assert_array_equal(chain.hold_action(np.array([3.0, -0.5])), [0.0, 0.0])
    np.testing.assert_array_equal(chain.hold_action(np.array([math.nan, 0.0])), [0.0, 0.0])  # NaN: no measurement
    chain.reset(np.array([0.5, 0.5]))
    np.testing.assert_array_equal(chain.hold_action(np.array([0.9, 0.9])), [0.5, 0.5])  # last committed wins
    held = chain.hold_action(None)
    held[0] = 99.0  # the caller's copy
    np.testing.assert_array_equal(chain.hold_action(None), [0.5, 0.5])
    for iface in ("velocity", "effort"):
        np.testing.assert_array_equal(SafetyChain(config(iface)).hold_action(np.ones(2)), [0.0, 0.0])


def test_nan_holds_last_safe_position_never_clipped() -> None:
    chain = SafetyChain(config())
    chain.reset(np.array([0.2, 0.2]))
    clock = Clock(chain)
    r = clock.step(np.array([math.nan, 0.2]))
    assert r.held and r.changed_by == ("non_finite",) and "j1=nan" in r.reasons[0]
    np.testing.assert_array_equal(r.action, [0.2, 0.2])


def test_reset_rate_limits_from_measured_position() -> None:
    chain = SafetyChain(config())
    q = np.array([0.5, -0.5])
    chain.reset(q)
    r = Clock(chain, q).step(np.array([-0.5, 0.5]))
    assert not r.held and {"velocity_limit", "acceleration_limit"} <= set(r.changed_by)
    step = np.abs(r.action - q)
    assert (step <= np.array([1.0, 2.0]) * PERIOD + 1e-12).all() and (step > 0).all()


def test_position_braking_stops_at_the_limit() -> None:
    chain = SafetyChain(config())
    chain.reset(np.zeros(2))
    clock = Clock(chain)
    prev, v_prev = np.zeros(2), np.zeros(2)
    for _ in range(400):
        r = clock.step(np.array([5.0, -5.0]))
        assert not r.held
        v = (r.action - prev) / PERIOD
        assert (np.abs(v - v_prev) <= np.array([10.0, 20.0]) * PERIOD + 1e-9).all()
        assert (r.action <= [1.0, 2.0]).all() and (r.action >= [-1.0, -2.0]).all()
        prev, v_prev = r.action, v
    np.testing.assert_allclose(r.action, [1.0, -2.0], atol=1e-6)


def test_velocity_interface_position_prediction() -> None:
    # The measurement is moved by hand below (0.2 rad in one tick): loosen the plausibility jump rule for that.
    chain = SafetyChain(config("velocity", plausibility_jump_slack_rad=0.5))
    clock = Clock(chain, np.array([0.9995, 0.0]))
    r = clock.step(np.array([0.08, 0.0]))
    assert r.changed_by == ("position_limit",)
    assert 0.9995 + r.action[0] * PERIOD <= 1.0 and 0.0 < r.action[0] < 0.08
    clock.q = np.array([1.2, 0.0])  # beyond the limit: only motion back inside
    assert clock.step(np.array([0.05, 0.0])).action[0] == 0.0
    r = clock.step(np.array([-0.05, 0.0]))
    assert r.action[0] < 0
    clock.q = None  # type: ignore[assignment]
    r = clock.step(np.array([-0.05, 0.0]))
    assert r.held and "no valid joint measurement" in r.reasons[0] and not r.action.any()


def test_effort_interface_limit_and_guard() -> None:
    chain = SafetyChain(config("effort", position_margin_rad=0.1))
    clock = Clock(chain, np.array([0.95, 0.0]))  # beyond the margined upper limit 0.9
    r = clock.step(np.array([3.0, -9.0]))
    np.testing.assert_array_equal(r.action, [0.0, -5.0])
    assert r.changed_by == ("effort_limit", "position_limit")
    np.testing.assert_array_equal(clock.step(np.array([-3.0, 1.0])).action, [-3.0, 1.0])  # back inside: allowed


def test_counters_and_diagnostics() -> None:
    chain = SafetyChain(config())
    assert chain.counters == {**dict.fromkeys(LINK_NAMES, 0), "held": 0}
    chain.reset(np.zeros(2))
    clock = Clock(chain)
    clock.step(np.array([math.nan, 0.0]))
    clock.step(np.zeros(3))
    clock.step(np.zeros(2), cmd_stamp=None)
    clock.step(np.array([0.005, 5.0]))  # position clip + rate limits
    counters = chain.counters
    assert counters["non_finite"] == 1 and counters["shape"] == 1 and counters["command_watchdog"] == 1
    assert counters["position_limit"] == 1 and counters["velocity_limit"] == 1 and counters["held"] == 3
    diags = chain.diagnostics()
    assert [d.name for d in diags] == [f"safety/{n}" for n in LINK_NAMES]
    by_name = {d.name: d for d in diags}
    assert by_name["safety/non_finite"].values["count"] == "1" and by_name["safety/non_finite"].level == 0
    assert by_name["safety/position_limit"].values["active"] == "true"
    assert by_name["safety/shape"].values["last_reason"].startswith("shape: shape (3,)")
    clock.step(np.zeros(2), obs_stamp=None)
    assert {d.name: d for d in chain.diagnostics()}["safety/observation_watchdog"].level == 1
    before = chain.counters
    chain.preview(np.array([math.nan, 0.0]), now_s=1.0, joint_pos_rad=None, joint_vel_rad_s=None,
                  observation_stamp_s=1.0, command_stamp_s=1.0)  # fmt: skip
    assert chain.counters == before  # preview changes nothing


def test_returned_action_is_independent_of_chain_state() -> None:
    chain = SafetyChain(config())
    chain.reset(np.zeros(2))
    clock = Clock(chain)
    r = clock.step(np.array([0.001, 0.001]))
    r.action[:] = 50.0
    np.testing.assert_array_equal(chain.hold_action(None), [0.001, 0.001])
