"""Domain randomization inside RobotTaskEnv: reproducible, within the declared ranges, off by default, task-neutral."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pybullet as pb
import pytest

from sim.env import RobotTaskEnv
from sim.randomization import DomainRandomization

BACKENDS = ("mujoco", "pybullet")
FULL = DomainRandomization(
    mass_scale=(0.8, 1.2),
    friction_scale=(0.5, 1.5),
    joint_damping_scale=(0.5, 2.0),
    actuator_gain_scale=(0.8, 1.2),
    action_latency_steps=(0, 2),
    obs_noise_std=0.01,
    obs_bias_std=0.01,
    control_jitter_frac=0.2,
    impulse_prob_per_step=0.2,
    impulse_force_n=(1.0, 5.0),
)
N_STEPS = 30


@pytest.fixture
def envs() -> Iterator[list[RobotTaskEnv]]:
    """Every env a test makes through `made.append(...)` is closed afterwards."""
    made: list[RobotTaskEnv] = []
    yield made
    for env in made:
        env.close()


def _make(envs: list[RobotTaskEnv], **kwargs: Any) -> RobotTaskEnv:
    env = RobotTaskEnv(**kwargs)
    envs.append(env)
    return env


def _trajectory(env: RobotTaskEnv, seed: int) -> dict[str, np.ndarray]:
    actions = np.random.default_rng(0).uniform(-0.5, 0.5, size=(N_STEPS, *env.action_space.shape))
    impulses_before = env.impulse_count
    obs, _ = env.reset(seed=seed)
    observations, rewards, applied = [obs], [], []
    for action in actions.astype(np.float32):
        obs, reward, terminated, truncated, info = env.step(action)
        assert not (terminated or truncated)
        observations.append(obs)
        rewards.append(reward)
        applied.append(info["applied_action"])
    return {
        "obs": np.stack(observations),
        "reward": np.asarray(rewards),
        "applied": np.stack(applied),
        "impulses": np.array([env.impulse_count - impulses_before]),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_reproduces_and_different_seeds_differ(backend: str, envs: list[RobotTaskEnv]) -> None:
    first = _make(envs, task="push", backend=backend, randomization=FULL)
    second = _make(envs, task="push", backend=backend, randomization=FULL)
    a = _trajectory(first, seed=5)
    b = _trajectory(second, seed=5)
    _trajectory(first, seed=8)
    again = _trajectory(first, seed=5)  # the same instance, after another randomized episode
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        np.testing.assert_array_equal(a[key], again[key], err_msg=key)
    assert a["impulses"][0] > 0  # the per-step nuisances were active in this trajectory
    other = _trajectory(second, seed=6)
    assert not np.array_equal(a["obs"], other["obs"])
    assert not np.array_equal(a["obs"][0], other["obs"][0])


def _assert_within(value: np.ndarray, nominal: np.ndarray, bounds: tuple[float, float], name: str) -> None:
    lo, hi = bounds
    assert value.shape == nominal.shape, name
    assert np.all(value >= nominal * lo) and np.all(value <= nominal * hi), name
    moved = nominal != 0
    assert np.any(value[moved] != nominal[moved]), f"{name} was not randomized at all"


@pytest.mark.parametrize("robot", ["panda", "iiwa"])  # the iiwa URDF declares joint damping; the Panda's does not
def test_mujoco_model_after_reset_lies_within_the_declared_multiples(robot: str, envs: list[RobotTaskEnv]) -> None:
    nominal = _make(envs, task="push", robot=robot, backend="mujoco").backend.model
    env = _make(envs, task="push", robot=robot, backend="mujoco", randomization=FULL)
    for seed in range(3):
        env.reset(seed=seed)
        m = env.backend.model
        _assert_within(m.body_mass, nominal.body_mass, FULL.mass_scale, "body_mass")
        _assert_within(m.body_inertia, nominal.body_inertia, FULL.mass_scale, "body_inertia")
        # A body's inertia scales with its own mass (the body stays the same shape).
        massive = nominal.body_mass > 0
        np.testing.assert_allclose(
            m.body_inertia[massive] / nominal.body_inertia[massive],
            np.repeat((m.body_mass[massive] / nominal.body_mass[massive])[:, None], 3, axis=1),
            rtol=1e-12,
        )
        _assert_within(m.geom_friction[:, 0], nominal.geom_friction[:, 0], FULL.friction_scale, "sliding friction")
        np.testing.assert_array_equal(m.geom_friction[:, 1:], nominal.geom_friction[:, 1:])
        _assert_within(m.actuator_gainprm[:, 0], nominal.actuator_gainprm[:, 0], FULL.actuator_gain_scale, "kp")
        # Stiffness and damping of each servo scale together (the motor is stronger, not retuned).
        scale = m.actuator_gainprm[:, 0] / nominal.actuator_gainprm[:, 0]
        np.testing.assert_allclose(m.actuator_biasprm[:, 1:3], nominal.actuator_biasprm[:, 1:3] * scale[:, None])
        if np.any(nominal.dof_damping != 0):
            _assert_within(m.dof_damping, nominal.dof_damping, FULL.joint_damping_scale, "dof_damping")
        else:
            np.testing.assert_array_equal(m.dof_damping, nominal.dof_damping)


def test_pybullet_link_masses_after_reset_lie_within_the_declared_multiples(envs: list[RobotTaskEnv]) -> None:
    def masses(env: RobotTaskEnv) -> np.ndarray:
        b = env.backend
        return np.array([pb.getDynamicsInfo(body, link, physicsClientId=b.cid)[0] for body, link in b._all_links()])

    nominal = masses(_make(envs, task="push", backend="pybullet"))
    env = _make(envs, task="push", backend="pybullet", randomization=FULL)
    env.reset(seed=0)
    _assert_within(masses(env), nominal, FULL.mass_scale, "link mass")


def _model_arrays(env: RobotTaskEnv) -> dict[str, np.ndarray]:
    m = env.backend.model
    return {
        name: getattr(m, name).copy()
        for name in (
            "body_mass",
            "body_inertia",
            "geom_friction",
            "dof_damping",
            "actuator_gainprm",
            "actuator_biasprm",
        )
    }


def test_default_randomization_leaves_the_model_exactly_nominal(envs: list[RobotTaskEnv]) -> None:
    built = _model_arrays(_make(envs, task="push", backend="mujoco"))
    for randomization in (None, DomainRandomization()):
        env = _make(envs, task="push", backend="mujoco", randomization=randomization)
        for seed in (0, 1):
            env.reset(seed=seed)
            env.step(np.zeros(7, dtype=np.float32))
            after = _model_arrays(env)
            for name, value in built.items():
                np.testing.assert_array_equal(after[name], value, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_action_latency_applies_the_hold_action_first(backend: str, envs: list[RobotTaskEnv]) -> None:
    env = _make(envs, task="push", backend=backend, randomization=DomainRandomization(action_latency_steps=(2, 2)))
    env.reset(seed=0)
    hold = np.zeros(7)  # joint_velocity interface: holding still is zero velocity
    actions = np.random.default_rng(1).uniform(-1.0, 1.0, size=(4, 7)).astype(np.float32)
    applied = [env.step(a)[4]["applied_action"] for a in actions]
    np.testing.assert_array_equal(applied[0], hold)
    np.testing.assert_array_equal(applied[1], hold)
    np.testing.assert_array_equal(applied[2], actions[0])
    np.testing.assert_array_equal(applied[3], actions[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_position_interface_latency_holds_the_reset_pose(backend: str, envs: list[RobotTaskEnv]) -> None:
    env = _make(
        envs,
        task="reach",
        backend=backend,
        interface="joint_position",
        randomization=DomainRandomization(action_latency_steps=(2, 2)),
    )
    env.reset(seed=0)
    hold = env.interface.to_normalized(env.backend.robot_state()[0])
    actions = np.random.default_rng(1).uniform(-1.0, 1.0, size=(3, 7)).astype(np.float32)
    applied = [env.step(a)[4]["applied_action"] for a in actions]
    np.testing.assert_allclose(applied[0], hold, atol=1e-12)
    np.testing.assert_allclose(applied[1], hold, atol=1e-12)
    np.testing.assert_array_equal(applied[2], actions[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_task_layout_is_independent_of_randomization(backend: str, envs: list[RobotTaskEnv]) -> None:
    plain = _make(envs, task="push", backend=backend)
    randomized = _make(envs, task="push", backend=backend, randomization=FULL)
    goals = []
    for seed in range(5):
        plain.reset(seed=seed)
        randomized.reset(seed=seed)
        np.testing.assert_array_equal(randomized.task.goal, plain.task.goal)
        for name in ("object_pos", "object_quat", "joint_pos"):
            np.testing.assert_array_equal(randomized.observation_dict()[name], plain.observation_dict()[name])
        goals.append(plain.task.goal.copy())
    assert len({tuple(g) for g in goals}) == len(goals)  # the seed does pick the layout
