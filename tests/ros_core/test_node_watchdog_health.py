"""The policy node's own watchdog, health report, log throttle and joint-state faults, with a fake clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robot_rl.safety.diagnostics import ERROR, OK, WARN
from ros_nodes.core.control_step import ControlStep
from ros_nodes.core.deployment import build_deployment
from ros_nodes.core.log_throttle import LogThrottle
from ros_nodes.core.node_health import NodeHealth, loop_level, node_entries
from ros_nodes.core.node_watchdog import NodeWatchdog, WatchdogStatus
from ros_nodes.core.observations import ObservationAssembler, ObservationLayout

PERIOD = 0.02
TIMEOUT = 0.06
POS_ONLY = ObservationLayout(keys=("joint_pos", "target"), sizes=(2, 1), joint_names=("a", "b"))
WITH_VEL = ObservationLayout(keys=("joint_pos", "joint_vel"), sizes=(2, 2), joint_names=("a", "b"))


# ------------------------------------------------------------------------------------------------- watchdog
def test_watchdog_is_quiet_while_inputs_tick_and_due_after_the_timeout() -> None:
    wd = NodeWatchdog(PERIOD, TIMEOUT)
    assert not wd.due(100.0)  # not armed: nothing to watch
    wd.arm(0.0)
    t = 0.0
    for _ in range(20):  # inputs tick every period: never due
        t += PERIOD
        wd.on_tick(t)
        assert not wd.due(t + PERIOD / 2)
    last_input = t
    assert not wd.due(last_input + TIMEOUT - 1e-6)
    assert wd.due(last_input + TIMEOUT)
    # The timer ticks every period in place of the inputs; those ticks do not make the inputs look alive.
    for k in range(1, 5):
        now = last_input + TIMEOUT + k * PERIOD
        assert wd.due(now)
        wd.on_tick(now, by_watchdog=True)
        status = wd.status(now)
        assert status.standing_in and not status.stalled
    assert wd.watchdog_ticks == 4
    wd.on_tick(1.0)  # inputs are back
    assert not wd.due(1.0 + PERIOD) and not wd.status(1.0 + PERIOD).standing_in


def test_watchdog_is_due_on_a_clock_that_went_back_and_reports_a_stall() -> None:
    wd = NodeWatchdog(PERIOD, TIMEOUT)
    wd.arm(10.0)
    assert wd.due(9.0)  # the clock jumped back: hold
    status = wd.status(10.0 + TIMEOUT + 2 * PERIOD)
    assert status.stalled and status.standing_in and status.since_tick_s == pytest.approx(TIMEOUT + 2 * PERIOD)
    wd.disarm()
    assert not wd.due(50.0) and not wd.status(50.0).stalled


@pytest.mark.parametrize(("period", "timeout"), [(0.0, 1.0), (0.02, float("nan")), (-1.0, 0.1), (0.02, 0.0)])
def test_watchdog_refuses_bad_periods(period: float, timeout: float) -> None:
    with pytest.raises(ValueError, match="must be finite and > 0"):
        NodeWatchdog(period, timeout)


# ------------------------------------------------------------------------------------------------- health
def _health(**kw: object) -> NodeHealth:
    base: dict[str, object] = {
        "active": True,
        "rejected": {},
        "last_rejection": "",
        "input_fault": "",
        "received": {"joint_states": 10},
        "policy_errors": 0,
        "last_policy_error": "",
        "policy_failing": False,
        "watchdog": WatchdogStatus(True, 0.01, 0.01, False, False, 0),
    }
    base.update(kw)
    return NodeHealth(**base)  # type: ignore[arg-type]


def _by_name(h: NodeHealth) -> dict[str, tuple[int, str, dict[str, str]]]:
    return {e.name: (e.level, e.message, e.values) for e in node_entries(h)}


def test_healthy_node_is_ok_everywhere() -> None:
    entries = _by_name(_health())
    assert [lvl for lvl, _, _ in entries.values()] == [OK, OK, OK]
    assert set(entries) == {"input", "policy", "watchdog"}


def test_rejections_are_warn_with_counts_and_error_while_the_input_is_faulted() -> None:
    counts = {"joint_states/non_finite": 3, "joint_states/length": 1}
    level, message, values = _by_name(_health(rejected=counts, last_rejection="joint_states: non-finite"))["input"]
    assert level == WARN and "4 rejected" in message and "joint_states/non_finite=3" in message
    assert values["rejected/joint_states/non_finite"] == "3" and values["received/joint_states"] == "10"
    level, message, _ = _by_name(_health(rejected=counts, input_fault="joint_states: velocity[] is empty"))["input"]
    assert level == ERROR and message.startswith("holding: joint_states: velocity[] is empty")


def test_policy_errors_are_warn_and_error_while_failing() -> None:
    level, message, values = _by_name(_health(policy_errors=2, last_policy_error="policy failed: boom"))["policy"]
    assert level == WARN and "2 failed calls" in message and "boom" in message and values["policy_errors"] == "2"
    level, message, _ = _by_name(
        _health(policy_errors=3, last_policy_error="policy failed: boom", policy_failing=True)
    )["policy"]
    assert level == ERROR and message.startswith("holding: policy failed: boom")


def test_watchdog_stand_ins_and_stalls_are_errors_and_past_ones_stay_visible() -> None:
    standing_in = WatchdogStatus(True, 0.2, 0.01, True, False, 7)
    level, message, values = _by_name(_health(watchdog=standing_in))["watchdog"]
    assert level == ERROR and "standing in" in message and values["watchdog_ticks"] == "7"
    stalled = WatchdogStatus(True, 0.5, 0.5, True, True, 7)
    level, message, _ = _by_name(_health(watchdog=stalled))["watchdog"]
    assert level == ERROR and "not controlling" in message
    assert loop_level("", stalled) == ERROR and loop_level("", standing_in) == OK
    assert loop_level("boom", standing_in) == ERROR
    recovered = WatchdogStatus(True, 0.01, 0.01, False, False, 7)
    level, message, _ = _by_name(_health(watchdog=recovered))["watchdog"]
    assert level == WARN and "7 watchdog ticks" in message


# ------------------------------------------------------------------------------------------------- throttle
def test_log_throttle_is_per_key_and_counts_what_it_dropped() -> None:
    th = LogThrottle(1.0)
    assert th.admit("a", 0.0) == 0
    assert th.admit("a", 0.5) is None and th.admit("a", 0.9) is None
    assert th.admit("b", 0.9) == 0  # a new reason is never hidden behind an old one
    assert th.admit("a", 1.0) == 2
    assert th.admit("a", 0.2) == 0  # clock went back: log rather than stay quiet
    with pytest.raises(ValueError, match="interval_s"):
        LogThrottle(-1.0)


# ------------------------------------------------------------------------------------------------- joint states
def test_positions_only_joint_states_are_taken_when_the_policy_needs_no_velocity() -> None:
    asm = ObservationAssembler(POS_ONLY)
    assert not asm.needs_velocity
    assert asm.update_joint_state(["b", "a"], [2.0, 1.0], [], arrival_s=1.0, header_stamp_s=1.0) is None
    assert asm.update_observation("target", [5.0], arrival_s=1.0) is None
    np.testing.assert_array_equal(asm.assemble(), np.array([1, 2, 5], np.float32))
    assert asm.joint_velocities(["a", "b"]) is None  # nothing measured: nobody gets a made-up velocity
    assert asm.oldest_arrival_s() == 1.0 and asm.rejected == {} and asm.fault == ""
    assert asm.update_joint_state(["a", "b"], [1.0, 2.0], [0.5, 0.25], arrival_s=2.0) is None
    np.testing.assert_array_equal(asm.joint_velocities(["b"]), [0.25])  # measured again


def test_positions_only_joint_states_are_rejected_with_the_reason_when_the_policy_observes_velocity() -> None:
    asm = ObservationAssembler(WITH_VEL)
    assert asm.needs_velocity
    assert asm.update_joint_state(["a", "b"], [1.0, 2.0], [0.0, 0.0], arrival_s=1.0) is None
    reason = asm.update_joint_state(["a", "b"], [1.5, 2.5], [], arrival_s=2.0)
    assert reason is not None and "velocity[] is empty" in reason and "joint_vel" in reason
    assert asm.rejected == {"joint_states/no_velocity": 1} and asm.last_rejection_kind == "joint_states/no_velocity"
    assert asm.fault == reason and asm.oldest_arrival_s() is None  # the watchdog holds from the next tick
    np.testing.assert_array_equal(asm.joint_positions(["a", "b"]), [1.0, 2.0])  # last good reading kept


@pytest.mark.parametrize(
    ("names", "pos", "vel", "kind"),
    [
        (["a", "b"], [np.nan, 2.0], [0.0, 0.0], "joint_states/non_finite"),
        (["a", "b"], [1.0], [0.0, 0.0], "joint_states/length"),
        (["a", "a"], [1.0, 2.0], [0.0, 0.0], "joint_states/duplicate"),
        (["a", "zz"], [1.0, 2.0], [0.0, 0.0], "joint_states/missing"),
        ([], [], [], "joint_states/missing"),
    ],
)
def test_a_rejected_reading_of_our_joints_faults_the_source_until_a_good_one(
    names: list[str], pos: list[float], vel: list[float], kind: str
) -> None:
    asm = ObservationAssembler(WITH_VEL)
    asm.update_joint_state(["a", "b"], [1.0, 2.0], [0.0, 0.0], arrival_s=1.0)
    assert asm.update_joint_state(names, pos, vel, arrival_s=1.01) is not None
    assert asm.rejected == {kind: 1} and asm.fault and asm.oldest_arrival_s() is None
    assert asm.update_joint_state(["a", "b"], [1.0, 2.0], [0.0, 0.0], arrival_s=1.02) is None
    assert asm.fault == "" and asm.oldest_arrival_s() == 1.02


def test_a_message_naming_none_of_our_joints_is_counted_but_does_not_fault_the_source() -> None:
    asm = ObservationAssembler(WITH_VEL)
    asm.update_joint_state(["a", "b"], [1.0, 2.0], [0.0, 0.0], arrival_s=1.0)
    reason = asm.update_joint_state(["gripper"], [0.04], [0.0], arrival_s=1.01)
    assert reason is not None and "none of the policy's joints" in reason
    assert asm.rejected == {"joint_states/foreign": 1} and asm.fault == "" and asm.oldest_arrival_s() == 1.0


# ------------------------------------------------------------------------------------------------- control step
CART_JOINTS = ["slider_to_cart", "cart_to_pole"]


def _cartpole(bundle: Path) -> ControlStep:
    step = build_deployment({"bundle_dir": str(bundle)}).step
    step.reset()
    return step


def test_a_rejected_reading_makes_the_next_tick_hold_and_a_good_one_resumes(cartpole_lqr_bundle: Path) -> None:
    step = _cartpole(cartpole_lqr_bundle)
    t = 0.0
    for _ in range(3):
        t += 0.02
        assert step.assembler.update_joint_state(CART_JOINTS, [0.0, 0.05], [0.0, 0.0], arrival_s=t) is None
        rec = step.tick(t)
    assert not rec.safety_held and np.isfinite(rec.executed_action).all() and rec.executed_action[0] != 0.0
    t += 0.02
    assert step.assembler.update_joint_state(CART_JOINTS, [0.0, np.nan], [0.0, 0.0], arrival_s=t) is not None
    rec = step.tick(t)  # the last good reading is only 20 ms old, yet the tick holds on the rejected one
    assert rec.safety_held and np.array_equal(rec.executed_action, [0.0])
    assert any(r.startswith("observation_watchdog") for r in rec.safety_reasons), rec.safety_reasons
    t += 0.02
    assert step.assembler.update_joint_state(CART_JOINTS, [0.0, 0.05], [0.0, 0.0], arrival_s=t) is None
    rec = step.tick(t)
    assert not rec.safety_held, rec.safety_reasons


def test_positions_only_for_a_policy_that_observes_velocity_holds(cartpole_lqr_bundle: Path) -> None:
    step = _cartpole(cartpole_lqr_bundle)
    assert step.assembler.needs_velocity  # the cart-pole observes joint velocities
    for k in range(1, 4):
        reason = step.assembler.update_joint_state(CART_JOINTS, [0.0, 0.05], [], arrival_s=0.02 * k)
        assert reason is not None and "velocity[] is empty" in reason
        rec = step.tick(0.02 * k)
        assert rec.safety_held and np.array_equal(rec.executed_action, [0.0])
    assert step.assembler.rejected == {"joint_states/no_velocity": 3}
