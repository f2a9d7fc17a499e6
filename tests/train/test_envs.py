"""Env creation and spec extraction."""

from __future__ import annotations

import pytest

from robot_rl.train.envs import EnvError, make_env, policy_spec_for


def test_mujoco_env_spec_names_the_driven_joints() -> None:
    env = make_env("Hopper-v5")
    spec = policy_spec_for(env, "Hopper-v5")
    env.close()
    assert spec.action.names == ("thigh_joint", "leg_joint", "foot_joint")
    assert spec.control_hz == pytest.approx(125.0)
    assert spec.observation.dim == 11


def test_discrete_action_env_is_refused_with_the_reason() -> None:
    with pytest.raises(EnvError, match="continuous"):
        make_env("CartPole-v1")


def test_suite_env_takes_physical_actions_through_the_one_map() -> None:
    import numpy as np

    env = make_env("robot_rl/PandaReach-v0")
    spec = policy_spec_for(env, "robot_rl/PandaReach-v0")
    assert spec.robot is not None and spec.action.units == "rad/s"
    np.testing.assert_allclose(env.action_space.high, spec.robot.command.physical_high, rtol=1e-6)
    # the wrapper hands the raw env exactly the normalized action the robot interface maps the command to
    command = np.asarray(spec.robot.command.physical_high, np.float32) * 0.5
    np.testing.assert_allclose(env.action(command), 0.5, rtol=1e-6)  # type: ignore[attr-defined]
    env.close()


def test_a_policy_runs_in_the_env_of_its_own_command_interface(reach_position_bundle: object) -> None:
    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.envs import check_policy_fits_env, make_env_for

    policy = OnnxPolicy.load(reach_position_bundle)  # type: ignore[arg-type]
    env = make_env_for(policy.spec)
    assert env.unwrapped.interface.name == "joint_position"  # type: ignore[attr-defined]
    velocity = policy_spec_for(make_env("robot_rl/PandaReach-v0"), "robot_rl/PandaReach-v0")
    with pytest.raises(EnvError, match=r"commands joint_position, but .* takes joint_velocity"):
        check_policy_fits_env(policy.spec, velocity, "robot_rl/PandaReach-v0")
    iiwa = policy_spec_for(make_env("robot_rl/IiwaReach-v0"), "robot_rl/IiwaReach-v0")
    with pytest.raises(EnvError, match=r"joints|robot"):
        check_policy_fits_env(policy.spec, iiwa, "robot_rl/IiwaReach-v0")
    env.close()
