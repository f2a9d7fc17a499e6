"""ObservationSpec / ActionSpec / PolicySpec: JSON round trips, flattening order, validation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec


def _through_json(data: dict) -> dict:
    return json.loads(json.dumps(data))


@pytest.fixture
def spec() -> PolicySpec:
    return PolicySpec(
        observation=ObservationSpec(keys=("joint_pos", "joint_vel", "image"), shapes=((2,), (2,), (2, 3))),
        action=ActionSpec(low=(-2.0, 0.0), high=(2.0, 0.5), names=("shoulder", "gripper"), units="N*m"),
        control_hz=50.0,
        chunk_size=4,
        execution_horizon=2,
        obs_history=2,
        action_latency_s=0.01,
        env_id="Reach-v0",
        metadata={"run_dir": "runs/x"},
    )


def test_policy_spec_json_round_trip(spec: PolicySpec) -> None:
    restored = PolicySpec.from_json(_through_json(spec.to_json()))
    assert restored == spec
    assert restored.observation.shapes == ((2,), (2,), (2, 3))
    assert restored.action.names == ("shoulder", "gripper")
    assert restored.env_id == "Reach-v0" and dict(restored.metadata) == {"run_dir": "runs/x"}
    assert restored.executed_per_chunk == 2 and restored.obs_history == 2


def test_observation_and_action_spec_json_round_trip(spec: PolicySpec) -> None:
    assert ObservationSpec.from_json(_through_json(spec.observation.to_json())) == spec.observation
    assert ActionSpec.from_json(_through_json(spec.action.to_json())) == spec.action
    # names and units are optional in the JSON
    assert ActionSpec.from_json({"low": [-1], "high": [1]}) == ActionSpec(low=(-1.0,), high=(1.0,))


def test_flatten_mapping_follows_spec_key_order_not_mapping_order(spec: PolicySpec) -> None:
    obs = {  # deliberately in a different insertion order than the spec
        "image": np.arange(6).reshape(2, 3) + 100,
        "joint_vel": [3.0, 4.0],
        "joint_pos": np.array([1.0, 2.0]),
    }
    flat = spec.observation.flatten(obs)
    expected = np.array([1, 2, 3, 4, 100, 101, 102, 103, 104, 105], np.float32)
    assert flat.dtype == np.float32
    np.testing.assert_array_equal(flat, expected)
    assert spec.observation.dim == 10


def test_flatten_missing_key_raises_with_key_name(spec: PolicySpec) -> None:
    with pytest.raises(ValueError, match="joint_vel"):
        spec.observation.flatten({"joint_pos": [1, 2], "image": np.zeros((2, 3))})


@pytest.mark.parametrize("bad_vel", [[1.0], [1.0, 2.0, 3.0], np.zeros((2, 2))])
def test_flatten_wrong_entry_size_raises(spec: PolicySpec, bad_vel: object) -> None:
    with pytest.raises(ValueError, match="joint_vel"):
        spec.observation.flatten({"joint_pos": [1, 2], "joint_vel": bad_vel, "image": np.zeros((2, 3))})


def test_flatten_flat_array_checks_size(spec: PolicySpec) -> None:
    np.testing.assert_array_equal(spec.observation.flatten(np.arange(10.0)), np.arange(10, dtype=np.float32))
    with pytest.raises(ValueError, match="9 elements, expected 10"):
        spec.observation.flatten(np.zeros(9))


@pytest.mark.parametrize(
    ("keys", "shapes"),
    [
        (("a", "b"), ((1,),)),  # length mismatch
        (("a", "a"), ((1,), (1,))),  # duplicate
        ((), ()),  # empty
        (("a",), ((0,),)),  # non-positive dimension
    ],
)
def test_observation_spec_validation(keys: tuple, shapes: tuple) -> None:
    with pytest.raises(ValueError):
        ObservationSpec(keys=keys, shapes=shapes)


def test_action_spec_to_physical_and_back_are_inverse() -> None:
    spec = ActionSpec(low=(-2.0, 0.0, 10.0), high=(2.0, 1.0, 30.0))
    np.testing.assert_allclose(spec.to_physical([-1, -1, -1]), [-2.0, 0.0, 10.0])
    np.testing.assert_allclose(spec.to_physical([1, 1, 1]), [2.0, 1.0, 30.0])
    np.testing.assert_allclose(spec.to_physical([0, 0, 0]), [0.0, 0.5, 20.0])
    rng = np.random.default_rng(0)
    norm = rng.uniform(-1, 1, size=(100, 3)).astype(np.float32)
    phys = spec.to_physical(norm)
    assert np.all(phys >= spec.low_array - 1e-6) and np.all(phys <= spec.high_array + 1e-6)
    np.testing.assert_allclose(spec.to_normalized(phys), norm, atol=1e-5)
    np.testing.assert_allclose(spec.to_physical(spec.to_normalized(phys)), phys, atol=1e-4)


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ((0.0,), (0.0,)),  # high == low
        ((1.0,), (-1.0,)),  # high < low
        ((-1.0, 0.0), (1.0, 0.0)),  # one dimension degenerate
        ((-math.inf,), (1.0,)),
        ((-1.0,), (math.inf,)),
        ((math.nan,), (1.0,)),
        ((-1.0,), (1.0, 2.0)),  # length mismatch
        ((), ()),  # empty
    ],
)
def test_action_spec_rejects_bad_bounds(low: tuple, high: tuple) -> None:
    with pytest.raises(ValueError):
        ActionSpec(low=low, high=high)


def test_action_spec_rejects_wrong_number_of_names() -> None:
    with pytest.raises(ValueError, match="names"):
        ActionSpec(low=(-1.0, -1.0), high=(1.0, 1.0), names=("only_one",))


@pytest.mark.parametrize("hz", [0.0, -10.0, math.nan, math.inf])
def test_policy_spec_rejects_bad_control_rate(hz: float) -> None:
    with pytest.raises(ValueError, match="control_hz"):
        PolicySpec(ObservationSpec.flat(3), ActionSpec(low=(-1.0,), high=(1.0,)), control_hz=hz)


def test_policy_spec_rejects_bad_chunk_size() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        PolicySpec(ObservationSpec.flat(3), ActionSpec(low=(-1.0,), high=(1.0,)), control_hz=10.0, chunk_size=0)


def test_policy_spec_control_period() -> None:
    spec = PolicySpec(ObservationSpec.flat(3), ActionSpec(low=(-1.0,), high=(1.0,)), control_hz=20.0)
    assert spec.control_period_s == pytest.approx(0.05)


def test_format1_robot_spec_upgrades_to_physical_actions() -> None:
    """A run trained before format 2 (normalized actions, untyped extra) re-exports with physical bounds."""
    v1 = {
        "observation": {"keys": ["observation"], "shapes": [[4]]},
        "action": {"low": [-1.0, -1.0], "high": [1.0, 1.0], "names": ["j1", "j2"], "units": ""},
        "control_hz": 20.0,
        "chunk_size": 1,
        "extra": {
            "env_id": "robot_rl/Toy-v0",
            "robot": "toy",
            "backend": "mujoco",
            "joint_names": ["j1", "j2"],
            "observation_layout": {"joint_pos": [2], "joint_vel": [2]},
            "action_interface": {
                "type": "joint_velocity",
                "units": "rad/s",
                "joints": ["j1", "j2"],
                "physical_low": [-2.0, -3.0],
                "physical_high": [2.0, 3.0],
            },
            "joint_limits": {"lower": [-1, -1], "upper": [1, 1], "velocity": [2, 3], "effort": [5, 5]},
            "run_dir": "runs/x",
        },
    }
    spec = PolicySpec.from_json(v1)
    assert spec.action.low == (-2.0, -3.0) and spec.action.high == (2.0, 3.0) and spec.action.units == "rad/s"
    assert spec.env_id == "robot_rl/Toy-v0" and dict(spec.metadata) == {"run_dir": "runs/x"}
    assert spec.robot is not None and spec.robot.command.ros2_control == "velocity"
    assert spec.robot.limits is not None and spec.robot.limits.acceleration_or_default() == (20.0, 30.0)
    np.testing.assert_array_equal(spec.robot.commanded_joint_pos_index(), [0, 1])
    assert PolicySpec.from_json(_through_json(spec.to_json())) == spec


def test_robot_spec_must_state_the_physical_range() -> None:
    from robot_rl.core.robot import CommandInterface, ObservationEntry, RobotInterface

    robot = RobotInterface(
        robot="toy",
        joint_names=("j1",),
        observation=(ObservationEntry("joint_pos", (1,), "rad"),),
        command=CommandInterface("joint_position", "rad", ("j1",), (-1.5,), (1.5,)),
    )
    with pytest.raises(ValueError, match="physical"):
        PolicySpec(ObservationSpec.flat(1), ActionSpec((-1.0,), (1.0,)), 10.0, robot=robot)
    ok = PolicySpec(ObservationSpec.flat(1), ActionSpec((-1.5,), (1.5,)), 10.0, robot=robot)
    np.testing.assert_allclose(ok.robot.command.to_physical([-1.0, 0.0, 1.0][:1]), [-1.5])  # type: ignore[union-attr]
    np.testing.assert_allclose(robot.command.to_normalized([3.0], clip=True), [1.0])
