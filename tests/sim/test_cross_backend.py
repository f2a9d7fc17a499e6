"""The MuJoCo and PyBullet twins of each robot are the same robot: limits, kinematics, Jacobians, servo targets."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sim.env import RobotTaskEnv

# Robot -> a task that builds it (its default interface).
ROBOT_TASKS = {"panda": "reach", "iiwa": "reach", "cartpole": "cartpole_balance"}
ARMS = ("panda", "iiwa")
N_CONFIGS = 20


@pytest.fixture(params=list(ROBOT_TASKS))
def twins(request: pytest.FixtureRequest) -> Iterator[tuple[RobotTaskEnv, RobotTaskEnv]]:
    yield from _twins(request.param)


@pytest.fixture(params=ARMS)
def arm_twins(request: pytest.FixtureRequest) -> Iterator[tuple[RobotTaskEnv, RobotTaskEnv]]:
    yield from _twins(request.param)


def _twins(robot: str) -> Iterator[tuple[RobotTaskEnv, RobotTaskEnv]]:
    mj = RobotTaskEnv(task=ROBOT_TASKS[robot], robot=robot, backend="mujoco")
    pb = RobotTaskEnv(task=ROBOT_TASKS[robot], robot=robot, backend="pybullet")
    yield mj, pb
    mj.close()
    pb.close()


def _configurations(env: RobotTaskEnv, n: int = N_CONFIGS, seed: int = 0) -> np.ndarray:
    """`n` seeded joint configurations drawn uniformly within the joint limits."""
    limits = env.robot.limits(env.robot.joints)
    return np.random.default_rng(seed).uniform(limits["lower"], limits["upper"], size=(n, len(env.robot.joints)))


def _quat_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between unit quaternions that treats q and −q as the same rotation."""
    return float(min(np.linalg.norm(a - b), np.linalg.norm(a + b)))


def test_joint_limits_agree_exactly_and_match_the_description(twins: tuple[RobotTaskEnv, RobotTaskEnv]) -> None:
    mj, pb = twins
    described = mj.robot.limits(mj.robot.joints)
    mj_limits, pb_limits = mj.backend.joint_limits(), pb.backend.joint_limits()
    for key in ("lower", "upper", "velocity", "effort"):
        assert np.array_equal(mj_limits[key], pb_limits[key]), key
        assert np.array_equal(mj_limits[key], described[key]), key
        assert mj_limits[key].shape == (len(mj.robot.joints),)


def test_cartpole_hinge_is_continuous_in_both_engines() -> None:
    # The pole's hinge has no position limit; both engines must say so with infinities (not 0 or a sentinel).
    for mj, pb in _twins("cartpole"):
        hinge = mj.robot.joints.index("cart_to_pole")
        for limits in (mj.backend.joint_limits(), pb.backend.joint_limits()):
            assert limits["lower"][hinge] == -np.inf and limits["upper"][hinge] == np.inf
            assert np.all(np.isfinite([limits["lower"][0], limits["upper"][0]]))  # the slider is limited


def test_end_effector_poses_agree_at_random_configurations(arm_twins: tuple[RobotTaskEnv, RobotTaskEnv]) -> None:
    mj, pb = arm_twins
    ee = mj.robot.ee_link
    positions = []
    for q in _configurations(mj):
        mj.backend.set_robot_state(q, np.zeros_like(q))
        pb.backend.set_robot_state(q, np.zeros_like(q))
        mj_pos, mj_quat = mj.backend.link_pose(ee)
        pb_pos, pb_quat = pb.backend.link_pose(ee)
        assert np.linalg.norm(mj_pos - pb_pos) < 1e-3, q
        assert _quat_distance(mj_quat, pb_quat) < 1e-3, q
        positions.append(mj_pos)
    # The configurations really move the end effector around (a frozen link would agree trivially).
    assert np.ptp(np.stack(positions), axis=0).max() > 0.3


def test_mujoco_jacobian_matches_finite_differences_of_its_kinematics(
    arm_twins: tuple[RobotTaskEnv, RobotTaskEnv],
) -> None:
    """The MuJoCo Jacobian is the reference the cross-backend comparison below measures against."""
    mj, _ = arm_twins
    backend, ee, h = mj.backend, mj.robot.ee_link, 1e-6
    for q in _configurations(mj, n=3, seed=1):
        backend.set_robot_state(q, np.zeros_like(q))
        jac, _ = backend.jacobian(ee)
        numeric = np.zeros_like(jac)
        for i in range(len(q)):
            dq = np.zeros_like(q)
            dq[i] = h
            backend.set_robot_state(q + dq, np.zeros_like(q))
            plus = backend.link_pose(ee)[0]
            backend.set_robot_state(q - dq, np.zeros_like(q))
            numeric[:, i] = (plus - backend.link_pose(ee)[0]) / (2 * h)
        np.testing.assert_allclose(jac, numeric, atol=1e-6)


@pytest.mark.parametrize("robot", ["panda", "iiwa"])
def test_jacobians_agree_at_random_configurations(robot: str) -> None:
    for mj, pb in _twins(robot):
        ee = mj.robot.ee_link
        for q in _configurations(mj):
            mj.backend.set_robot_state(q, np.zeros_like(q))
            pb.backend.set_robot_state(q, np.zeros_like(q))
            (mj_lin, mj_ang), (pb_lin, pb_ang) = mj.backend.jacobian(ee), pb.backend.jacobian(ee)
            assert mj_lin.shape == pb_lin.shape == (3, len(mj.robot.actuated))
            np.testing.assert_allclose(pb_lin, mj_lin, atol=1e-3)
            np.testing.assert_allclose(pb_ang, mj_ang, atol=1e-3)


@pytest.mark.parametrize("robot", ARMS)
def test_joint_position_servo_settles_on_a_fixed_target_in_both_engines(robot: str) -> None:
    # A moderate step (0.15 rad at most per joint) away from the home pose, in both directions across joints.
    offset = np.array([0.15, -0.1, 0.12, 0.15, -0.15, 0.1, -0.15])
    for backend in ("mujoco", "pybullet"):
        env = RobotTaskEnv(task="reach", robot=robot, backend=backend, interface="joint_position", max_steps=1000)
        env.reset(seed=0)
        target = np.asarray(env.robot.home) + offset
        limits = env.robot.limits()
        assert np.all(target > limits["lower"]) and np.all(target < limits["upper"])
        action = env.interface.to_normalized(target).astype(np.float32)
        q_start = env.backend.robot_state()[0]
        for _ in range(round(2.0 / env.dt)):
            env.step(action)
        q = env.backend.robot_state()[0]
        env.close()
        assert np.abs(q_start - target).max() > 0.1, backend  # it had somewhere to go
        np.testing.assert_allclose(q, target, atol=0.01, err_msg=f"{robot} in {backend}")
