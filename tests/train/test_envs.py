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
