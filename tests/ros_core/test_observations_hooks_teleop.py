"""ROS-free pieces of the deployed loop: observation assembly by joint name, reward hooks, joystick mapping."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.core.robot import CommandInterface, ObservationEntry, RobotInterface
from robot_rl.data.step_record import StepRecord
from ros_nodes.core.observations import ObservationAssembler, ObservationLayout
from ros_nodes.core.reward_hooks import RewardHooks, RLIFHook, SuccessHook, load_hook
from ros_nodes.core.teleop import JoyMapping, JoyTeleop

LAYOUT = ObservationLayout(keys=("joint_pos", "joint_vel", "target"), sizes=(3, 3, 2), joint_names=("a", "b", "c"))


def test_joint_states_are_matched_by_name_not_order() -> None:
    asm = ObservationAssembler(LAYOUT)
    assert asm.assemble() is None and asm.missing() == ("joint_state", "target")
    assert asm.update_joint_state(["c", "x", "a", "b"], [3, 9, 1, 2], [30, 90, 10, 20], arrival_s=1.0) is None
    assert asm.update_observation("target", [7, 8], arrival_s=1.5) is None
    np.testing.assert_array_equal(asm.assemble(), np.array([1, 2, 3, 10, 20, 30, 7, 8], np.float32))
    np.testing.assert_array_equal(asm.joint_positions(["b", "a"]), [2.0, 1.0])
    assert asm.oldest_arrival_s() == 1.0


@pytest.mark.parametrize(
    ("names", "pos", "vel", "kind"),
    [
        (["a", "b"], [1, 2], [1, 2], "joint_states/missing"),
        (["a", "b", "c"], [1, 2], [1, 2, 3], "joint_states/length"),
        (["a", "b", "c"], [1, 2, 3], [], "joint_states/no_velocity"),  # positions only, but joint_vel observed
        (["a", "a", "c"], [1, 2, 3], [1, 2, 3], "joint_states/duplicate"),
        (["a", "b", "c"], [1, np.nan, 3], [1, 2, 3], "joint_states/non_finite"),
        (["a", "b", "c"], [1, np.inf, 3], [1, 2, 3], "joint_states/non_finite"),
        (["a", "b", "c"], ["x", 2, 3], [1, 2, 3], "joint_states/malformed"),
    ],
)
def test_bad_joint_states_are_rejected_and_keep_the_last_good_one(names, pos, vel, kind) -> None:  # type: ignore[no-untyped-def]
    asm = ObservationAssembler(LAYOUT)
    asm.update_joint_state(["a", "b", "c"], [1, 2, 3], [0, 0, 0], arrival_s=1.0)
    reason = asm.update_joint_state(names, pos, vel, arrival_s=2.0)
    assert reason and asm.rejected == {kind: 1}
    np.testing.assert_array_equal(asm.joint_positions(["a", "b", "c"]), [1, 2, 3])
    assert asm.oldest_arrival_s() is None or asm.oldest_arrival_s() == 1.0  # freshness did not advance


def test_frozen_sensor_resending_the_same_stamp_does_not_look_fresh() -> None:
    asm = ObservationAssembler(ObservationLayout(("joint_pos",), (1,), ("a",)))
    asm.update_joint_state(["a"], [0.0], [0.0], arrival_s=1.0, header_stamp_s=5.0)
    asm.update_joint_state(["a"], [0.0], [0.0], arrival_s=2.0, header_stamp_s=5.0)
    assert asm.oldest_arrival_s() == 1.0
    asm.update_joint_state(["a"], [0.0], [0.0], arrival_s=3.0, header_stamp_s=5.1)
    assert asm.oldest_arrival_s() == 3.0


def test_bad_observation_topics_are_rejected() -> None:
    asm = ObservationAssembler(LAYOUT)
    assert asm.update_observation("target", [1.0], arrival_s=0.0)  # wrong length
    assert asm.update_observation("target", [1.0, np.nan], arrival_s=0.0)
    assert asm.update_observation("nope", [1.0, 2.0], arrival_s=0.0)
    assert asm.update_observation("joint_pos", [1.0, 2.0, 3.0], arrival_s=0.0)  # comes from joint_states only
    assert "target" in asm.missing()


def _robot(goal_shape: tuple[int, ...] = (3,)) -> RobotInterface:
    return RobotInterface(
        robot="toy",
        joint_names=("a", "b"),
        observation=(
            ObservationEntry("joint_pos", (2,), "rad"),
            ObservationEntry("joint_vel", (2,), "rad/s"),
            ObservationEntry("goal", goal_shape, "m"),
        ),
        command=CommandInterface("joint_velocity", "rad/s", ("a", "b"), (-1.0, -1.0), (1.0, 1.0)),
    )


def test_layout_from_the_robot_interface_checks_sizes() -> None:
    layout = ObservationLayout.from_robot(_robot(), 7)
    assert layout.topic_keys == ("goal",) and layout.sizes == (2, 2, 3) and layout.joint_names == ("a", "b")
    assert ObservationLayout.from_robot(_robot((3, 2)), 10).sizes == (2, 2, 6)  # an entry's shape is flattened
    with pytest.raises(ValueError, match="sums to 7"):
        ObservationLayout.from_robot(_robot(), 8)


def _ctx(**kw) -> StepRecord:  # type: ignore[no-untyped-def]
    base = dict(
        step=0,
        stamp_ns=0,
        observation=np.full(1, np.nan),
        policy_action=np.zeros(1),
        executed_action=np.zeros(1),
        reward_terms={},
        intervention=False,
        intervention_onset=False,
        intervention_offset=False,
        safety_reasons=(),
        is_success=None,
    )
    base.update(kw)
    return StepRecord(**base)


def test_rlif_penalises_onset_only_and_success_hook() -> None:
    hooks = RewardHooks.from_specs(["rlif", "success"])  # by entry-point name
    assert hooks(_ctx()) == {"rlif": 0.0, "success": 0.0}
    assert hooks(_ctx(intervention=True, intervention_onset=True, is_success=True)) == {"rlif": -1.0, "success": 1.0}
    assert hooks(_ctx(intervention=True)) == {"rlif": 0.0, "success": 0.0}
    assert RLIFHook(penalty=2.5)(_ctx(intervention_onset=True)) == {"rlif": -2.5}
    assert SuccessHook()(_ctx(is_success=False)) == {"success": 0.0}


def test_hooks_by_import_path_and_failures_never_raise() -> None:
    name, hook = load_hook("ros_nodes.core.reward_hooks:RLIFHook")
    assert name == "rlif" and callable(hook)

    def broken(ctx: StepRecord) -> dict[str, float]:
        raise RuntimeError("boom")

    def nan_hook(ctx: StepRecord) -> dict[str, float]:
        return {"x": float("nan")}

    hooks = RewardHooks([("broken", broken), ("nan", nan_hook), ("ok", lambda c: {"ok": 1.0})])
    assert hooks(_ctx()) == {"ok": 1.0}
    assert hooks.failures == {"broken": 1, "nan": 1, "ok": 0}
    assert "non-finite" in hooks.last_failure


@pytest.mark.parametrize("spec", ["no_such_hook", "os:nope", "no_such_module_xyz:f", "math:pi"])
def test_unknown_hooks_fail_clearly(spec: str) -> None:
    with pytest.raises(ValueError, match=r"reward hook|not callable"):
        load_hook(spec)


def test_joy_deadman_and_velocity_mapping() -> None:
    t = JoyTeleop(JoyMapping(deadman_button=1, axes=(0, -1, 2), scale_rad_s=(1.0, 1.0, 0.5)))
    assert t.update([1, 0], [0.5, 0.0, 1.0], 0.0) == (False, None)
    engaged, cmd = t.update([0, 1], [0.5, 0.9, -2.0], 0.0)
    assert engaged and cmd is not None
    np.testing.assert_allclose(cmd, [0.5, 0.0, -0.5])  # clamped deflection, unmapped joint still
    assert t.update([0, 1], [float("nan"), 0.0, 0.0], 0.0) == (False, None)  # malformed → disengage
    assert t.update([0, 1], [0.1], 0.0) == (False, None)  # too few axes → disengage
    assert t.update([], [], 0.0) == (False, None)


def test_joy_position_mode_integrates_from_measured() -> None:
    t = JoyTeleop(JoyMapping(deadman_button=0, axes=(0,), scale_rad_s=(1.0,), command_interface="position"))
    assert t.update([1], [1.0], 0.0, None) == (True, None)  # no measurement yet: nothing to send
    _, c0 = t.update([1], [1.0], 1.0, np.array([0.3]))
    _, c1 = t.update([1], [1.0], 1.05, np.array([0.3]))
    assert c0 is not None and c1 is not None
    np.testing.assert_allclose(c0, [0.3])
    np.testing.assert_allclose(c1, [0.35])
