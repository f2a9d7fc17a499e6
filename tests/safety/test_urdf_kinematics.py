"""URDF forward kinematics for the workspace box: agreement with MuJoCo, refusals, and the deployment wiring."""

from __future__ import annotations

import timeit
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_rl.safety.urdf_kinematics import UrdfChain, load_forward_kinematics, resolve_urdf

mujoco = pytest.importorskip("mujoco")

TOL_M = 1e-6
N_CONFIGS = 100


def _mat(quat_wxyz: np.ndarray) -> np.ndarray:
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, quat_wxyz)
    return out.reshape(3, 3)


@pytest.mark.parametrize("robot_name", ["panda", "iiwa"])
def test_matches_mujoco_on_random_configurations(robot_name: str) -> None:
    from sim.backend import Scene
    from sim.mujoco.backend import MujocoBackend
    from sim.robots.description import get_robot

    robot = get_robot(robot_name)
    assert robot.actuated == robot.joints  # every moving joint of these arms is commanded
    chain = UrdfChain.from_urdf(resolve_urdf(f"pybullet_data:{robot.urdf}"), robot.ee_link, robot.actuated)
    fk = load_forward_kinematics(f"pybullet_data:{robot.urdf}", robot.ee_link, robot.actuated)
    backend = MujocoBackend(robot, Scene(floor=False))
    limits = robot.limits(robot.joints)
    rng = np.random.default_rng(7)
    worst_p = worst_r = 0.0
    for _ in range(N_CONFIGS):
        q = rng.uniform(limits["lower"], limits["upper"])
        backend.set_robot_state(q, np.zeros_like(q))
        # The sim may place the robot's base anywhere in its world (description.base_position_m): compare in
        # the base link's frame, which is the frame of the URDF chain.
        base_p, base_q = backend.link_pose(chain.base_link)
        base_r = _mat(base_q)
        ee_p, ee_q = backend.link_pose(robot.ee_link)
        p_ref = base_r.T @ (ee_p - base_p)
        r_ref = base_r.T @ _mat(ee_q)
        pos, rot = chain.pose(q)
        worst_p = max(worst_p, float(np.abs(fk(q) - p_ref).max()), float(np.abs(pos - p_ref).max()))
        worst_r = max(worst_r, float(np.abs(rot - r_ref).max()))
    assert worst_p <= TOL_M, f"{robot_name}: worst position error {worst_p} m"
    assert worst_r <= 1e-9, f"{robot_name}: worst rotation error {worst_r}"


# Odd on purpose: rpy origins, non-unit / negative / default axes, a prismatic and a continuous joint, fixed
# joints before, between and after the moving ones, a side branch, and a chain joint held by fixed_positions.
_INERTIAL = '<inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial>'
_LINKS = ("base", "l0", "l1", "l2", "l3", "l4", "l5", "tool", "side")
SYNTHETIC_URDF = f"""<?xml version="1.0"?>
<robot name="odd">
  <mujoco><compiler fusestatic="false" angle="radian"/></mujoco>
  {"".join(f'<link name="{n}">{_INERTIAL}</link>' for n in _LINKS)}
  <joint name="j_mount" type="fixed"><parent link="base"/><child link="l0"/>
    <origin xyz="0.1 -0.2 0.3" rpy="0.3 -0.2 0.5"/></joint>
  <joint name="j_a" type="revolute"><parent link="l0"/><child link="l1"/>
    <origin xyz="0 0 0.2" rpy="0.1 0.2 0.3"/><axis xyz="0 1 0"/>
    <limit lower="-3" upper="3" effort="10" velocity="1"/></joint>
  <joint name="j_side" type="revolute"><parent link="l1"/><child link="side"/>
    <origin xyz="0 0.3 0"/><axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="10" velocity="1"/></joint>
  <joint name="j_b" type="prismatic"><parent link="l1"/><child link="l2"/>
    <origin xyz="0.1 0 0" rpy="0 0.4 0"/><axis xyz="1 1 0"/>
    <limit lower="-0.5" upper="0.5" effort="10" velocity="1"/></joint>
  <joint name="j_c" type="continuous"><parent link="l2"/><child link="l3"/>
    <origin xyz="0 0.15 0.05" rpy="-0.7 0 1.2"/><axis xyz="0 0 -1"/></joint>
  <joint name="j_d" type="revolute"><parent link="l3"/><child link="l4"/>
    <origin xyz="0.05 0.02 0.1"/><limit lower="-3" upper="3" effort="10" velocity="1"/></joint>
  <joint name="j_held" type="revolute"><parent link="l4"/><child link="l5"/>
    <origin xyz="0 0 0.1"/><axis xyz="0.3 -0.5 0.8"/><limit lower="-3" upper="3" effort="10" velocity="1"/></joint>
  <joint name="j_tool" type="fixed"><parent link="l5"/><child link="tool"/>
    <origin xyz="0.02 0.03 0.12" rpy="1.0 0.5 -0.3"/></joint>
</robot>
"""


def test_odd_urdf_matches_mujoco() -> None:
    names = ["j_d", "j_a", "j_c", "j_b"]  # not the chain's order: positions are read in this order
    held = 0.4
    chain = UrdfChain.from_urdf(SYNTHETIC_URDF, "tool", names, fixed_positions={"j_held": held})
    assert chain.base_link == "base" and chain.n_joints == 4 and chain.joint_names == tuple(names)
    model = mujoco.MjModel.from_xml_string(SYNTHETIC_URDF)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(3)
    for _ in range(N_CONFIGS):
        q = np.array([rng.uniform(-3, 3), rng.uniform(-3, 3), rng.uniform(-6, 6), rng.uniform(-0.5, 0.5)])
        for name, value in [*zip(names, q, strict=True), ("j_held", held), ("j_side", rng.uniform(-3, 3))]:
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = value
        mujoco.mj_kinematics(model, data)
        body = model.body("tool").id
        pos, rot = chain.pose(q)
        np.testing.assert_allclose(chain.position(q), data.xpos[body], atol=TOL_M, rtol=0)
        np.testing.assert_allclose(pos, data.xpos[body], atol=TOL_M, rtol=0)
        np.testing.assert_allclose(rot, data.xmat[body].reshape(3, 3), atol=1e-9, rtol=0)
    # base_link: positions in l1's frame, where j_a no longer moves anything.
    sub = UrdfChain.from_urdf(SYNTHETIC_URDF, "tool", ["j_b", "j_c", "j_d"], "l1", fixed_positions={"j_held": 0.0})
    assert sub.base_link == "l1" and sub.joint_names == ("j_b", "j_c", "j_d")


def test_position_is_fast() -> None:
    fk = load_forward_kinematics(
        "pybullet_data:franka_panda/panda.urdf", "panda_grasptarget", [f"panda_joint{i}" for i in range(1, 8)]
    )
    q = np.array([0.1, -0.785, 0.2, -2.356, 0.3, 1.571, 0.785])
    per_call_s = min(timeit.repeat(lambda: fk(q), number=2000, repeat=5)) / 2000
    assert per_call_s < 50e-6, f"{per_call_s * 1e6:.1f} µs per call"  # ~4 µs on a desktop core; generous for CI


PANDA_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]


@pytest.mark.parametrize(
    ("urdf", "ee", "joints", "kwargs", "match"),
    [
        ("<robot name='x'><link name='a'>", "a", [], {}, "malformed URDF"),
        ("<notarobot/>", "a", [], {}, "expected <robot>"),
        (
            "<robot name='x'><link name='a'/><joint name='j' type='fixed'><parent link='a'/><child link='b'/></joint>"
            "</robot>",
            "a",
            [],
            {},
            "link 'b', which is not defined",
        ),
        (
            "<robot name='x'><link name='a'/><link name='b'/><joint name='j' type='revolute'><parent link='a'/>"
            "<child link='b'/><axis xyz='0 0 0'/></joint></robot>",
            "b",
            ["j"],
            {},
            "zero axis",
        ),
        (
            "<robot name='x'><link name='a'/><link name='b'/><joint name='j' type='floating'><parent link='a'/>"
            "<child link='b'/></joint></robot>",
            "b",
            [],
            {},
            "type 'floating'",
        ),
        (
            "<robot name='x'><link name='a'/><link name='b'/><joint name='j' type='revolute'><parent link='a'/>"
            "<child link='b'/><origin xyz='0 zero 0'/></joint></robot>",
            "b",
            ["j"],
            {},
            "origin xyz",
        ),
        ("<robot name='x'><link name='a'/><link name='b'/></robot>", "b", [], {}, "2 root links"),
        (SYNTHETIC_URDF, "tool", ["j_a", "j_b", "j_c", "j_d"], {"base_link": "side"}, "not on the path"),
        (
            SYNTHETIC_URDF,
            "tool",
            ["j_a", "j_b", "j_c", "j_d", "j_held"],
            {"fixed_positions": {"j_held": 0.0}},
            "both commanded",
        ),
        (
            SYNTHETIC_URDF,
            "tool",
            ["j_a", "j_b", "j_c", "j_d"],
            {"fixed_positions": {"j_nope": 0.0}},
            "fixed_positions names",
        ),
    ],
)
def test_refusals_name_the_problem(urdf: str, ee: str, joints: list[str], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        UrdfChain.from_urdf(urdf, ee, joints, **kwargs)


def test_panda_refusals(tmp_path: Path) -> None:
    panda = "pybullet_data:franka_panda/panda.urdf"
    with pytest.raises(ValueError, match="end-effector link 'panda_hnd' is not in the URDF"):
        load_forward_kinematics(panda, "panda_hnd", PANDA_JOINTS)
    with pytest.raises(ValueError, match=r"\['panda_jiont7'\] are not moving joints on the chain"):
        load_forward_kinematics(panda, "panda_grasptarget", [*PANDA_JOINTS[:6], "panda_jiont7"])
    with pytest.raises(ValueError, match=r"\['panda_finger_joint1'\] are not moving joints"):
        load_forward_kinematics(panda, "panda_grasptarget", [*PANDA_JOINTS, "panda_finger_joint1"])
    with pytest.raises(ValueError, match=r"chain joints \['panda_joint7'\].*not in joint_names"):
        load_forward_kinematics(panda, "panda_grasptarget", PANDA_JOINTS[:6])
    with pytest.raises(ValueError, match="more than once"):
        load_forward_kinematics(panda, "panda_grasptarget", [*PANDA_JOINTS, "panda_joint1"])
    with pytest.raises(ValueError, match="URDF file not found"):
        load_forward_kinematics(str(tmp_path / "robot.urdf"), "panda_grasptarget", PANDA_JOINTS)
    with pytest.raises(ValueError, match="URDF file not found"):
        load_forward_kinematics("pybullet_data:franka_panda/nope.urdf", "panda_grasptarget", PANDA_JOINTS)
    with pytest.raises(ValueError, match="no end-effector link"):
        load_forward_kinematics(panda, "", PANDA_JOINTS)
    # A file path works as well as the pybullet_data form; the fingers (a branch off the hand) are irrelevant.
    fk = load_forward_kinematics(resolve_urdf(panda), "panda_grasptarget", PANDA_JOINTS)
    with pytest.raises(ValueError, match="expected 7 joint positions"):
        fk(np.zeros(6))


def test_missing_pybullet_data_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pybullet_data", None)  # import now raises ImportError
    with pytest.raises(ValueError, match="pybullet_data package, which is not installed"):
        resolve_urdf("pybullet_data:franka_panda/panda.urdf")


# ------------------------------------------------------------------ deployment
def _box_params(bundle: Path, lower: list[float], upper: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "bundle_dir": str(bundle),
        "safety.workspace_lower_m": lower,
        "safety.workspace_upper_m": upper,
        **extra,
    }


def test_workspace_box_deployment_holds_a_command_leaving_the_box(reach_bundle: Path) -> None:
    from ros_nodes.core.deployment import build_deployment
    from sim.robots.description import get_robot

    home = np.array(get_robot("panda").home)
    urdf = "pybullet_data:franka_panda/panda.urdf"
    fk = load_forward_kinematics(urdf, "panda_grasptarget", PANDA_JOINTS)
    p_home = fk(home)
    tilt = np.zeros(7)
    tilt[1] = 0.04  # rad of joint 2 (within every rate limit): tilts the grasp target forward (+x)
    forward_m = float(fk(home + tilt)[0] - p_home[0])
    assert forward_m > 0.004
    lower, upper = list(p_home - 0.1), list(p_home + 0.1)
    upper[0] = float(p_home[0]) + forward_m / 2  # the box's front face lies halfway along that tilt

    with pytest.raises(ValueError, match="needs forward kinematics: set the parameters `urdf`"):
        build_deployment(_box_params(reach_bundle, lower, upper))
    with pytest.raises(ValueError, match="panda_grasp"):
        build_deployment(_box_params(reach_bundle, lower, upper, urdf=urdf, ee_link="panda_grasp"))
    # A URDF without a box is not used (and not an error).
    assert not build_deployment({"bundle_dir": str(reach_bundle), "urdf": urdf}).safety_config.has_workspace

    dep = build_deployment(_box_params(reach_bundle, lower, upper, urdf=urdf, ee_link="panda_grasptarget"))
    chain, iface = dep.step.chain, dep.step.command.ros2_control
    period = dep.safety_config.control_period_s
    assert dep.safety_config.has_workspace and iface in ("position", "velocity")
    chain.reset(joint_pos_rad=home)
    now = 0.0

    def send(offset: np.ndarray) -> Any:
        nonlocal now
        now += period
        command = home + offset if iface == "position" else offset / period
        return chain.filter(
            command,
            now_s=now,
            joint_pos_rad=home,
            joint_vel_rad_s=None,
            observation_stamp_s=now,
            command_stamp_s=now,
        )

    assert not send(np.zeros(7)).held  # staying put at home is inside the box
    res = send(tilt)
    assert res.held and res.changed_by == ("workspace",)
    assert "outside the box" in res.reasons[0] and "x " in res.reasons[0]
    assert res.action.tolist() == (home.tolist() if iface == "position" else [0.0] * 7)
    assert not send(-tilt).held  # moving back away from the face is fine


# ------------------------------------------------------------------ Jacobian
N_JACOBIAN_CONFIGS = 25


@pytest.mark.parametrize("robot_name", ["panda", "iiwa"])
def test_jacobian_matches_mujoco_jac_body(robot_name: str) -> None:
    from sim.backend import Scene
    from sim.mujoco.backend import MujocoBackend
    from sim.robots.description import get_robot

    robot = get_robot(robot_name)
    chain = UrdfChain.from_urdf(resolve_urdf(f"pybullet_data:{robot.urdf}"), robot.ee_link, robot.actuated)
    backend = MujocoBackend(robot, Scene(floor=False))
    model, data = backend.model, backend.data
    dofs = [int(model.jnt_dofadr[model.joint(name).id]) for name in robot.actuated]  # our column order
    body = model.body(robot.ee_link).id
    limits = robot.limits(robot.joints)
    rng = np.random.default_rng(11)
    worst = 0.0
    for _ in range(N_JACOBIAN_CONFIGS):
        q = rng.uniform(limits["lower"], limits["upper"])
        backend.set_robot_state(q, np.zeros_like(q))
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
        mujoco.mj_jacBody(model, data, jacp, jacr, body)
        # World frame → the URDF chain's base frame (the sim may place the base anywhere, as for FK above).
        base_r = _mat(backend.link_pose(chain.base_link)[1])
        ref = np.vstack([base_r.T @ jacp[:, dofs], base_r.T @ jacr[:, dofs]])
        jac = chain.jacobian(q)
        assert jac.shape == (6, 7)
        worst = max(worst, float(np.abs(jac - ref).max()))
    assert worst <= 1e-6, f"{robot_name}: worst Jacobian error {worst}"


def test_jacobian_of_odd_urdf_prismatic_and_permuted_columns() -> None:
    names = ["j_d", "j_a", "j_c", "j_b"]  # j_b is prismatic; columns follow this order, not the chain's
    chain = UrdfChain.from_urdf(SYNTHETIC_URDF, "tool", names, fixed_positions={"j_held": 0.4})
    model = mujoco.MjModel.from_xml_string(SYNTHETIC_URDF)
    data = mujoco.MjData(model)
    body = model.body("tool").id
    rng = np.random.default_rng(5)
    for _ in range(N_JACOBIAN_CONFIGS):
        q = np.array([rng.uniform(-3, 3), rng.uniform(-3, 3), rng.uniform(-6, 6), rng.uniform(-0.5, 0.5)])
        for name, value in [*zip(names, q, strict=True), ("j_held", 0.4)]:
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = value
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
        mujoco.mj_jacBody(model, data, jacp, jacr, body)
        cols = [int(model.jnt_dofadr[model.joint(n).id]) for n in names]
        np.testing.assert_allclose(chain.jacobian(q), np.vstack([jacp[:, cols], jacr[:, cols]]), atol=1e-6, rtol=0)
    # A finite-difference check of the linear rows, independent of MuJoCo.
    q = np.array([0.3, -0.7, 1.1, 0.2])
    eps = 1e-6
    fd = np.column_stack([(chain.position(q + eps * e) - chain.position(q - eps * e)) / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(chain.jacobian(q)[:3], fd, atol=1e-6)
    with pytest.raises(ValueError, match="expected 4 joint positions"):
        chain.jacobian(np.zeros(3))
