"""`UrdfChain.point_jacobians`: control-point positions and Jacobians agree with finite differences, with
`position` / `jacobian` at the end effector, and with a chain that has prismatic, fixed and reordered joints."""

from __future__ import annotations

import numpy as np

from robot_rl.safety.urdf_kinematics import UrdfChain, load_urdf_chain
from tests.safety.cbf_setup import PANDA_JOINTS, PANDA_LIMITS, PANDA_URDF

_LINK = "<link name='{}'/>"
_JOINT = (
    "<joint name='{name}' type='{type}'><parent link='{parent}'/><child link='{child}'/>"
    "<origin xyz='{xyz}' rpy='{rpy}'/><axis xyz='{axis}'/></joint>"
)
SMALL_URDF = (
    "<robot name='small'>"
    + "".join(_LINK.format(n) for n in ("base", "a", "b", "c", "d", "tool"))
    + _JOINT.format(name="j1", type="revolute", parent="base", child="a", xyz="0 0 0.1", rpy="0 0 0", axis="0 0 1")
    + _JOINT.format(name="fix", type="fixed", parent="a", child="b", xyz="0.05 0 0", rpy="0.3 0 0", axis="1 0 0")
    + _JOINT.format(name="j2", type="prismatic", parent="b", child="c", xyz="0 0.1 0", rpy="0 0.2 0", axis="1 1 0")
    + _JOINT.format(name="j3", type="continuous", parent="c", child="d", xyz="0.2 0 0", rpy="0 0 0.4", axis="0 -1 0")
    + _JOINT.format(name="tip", type="fixed", parent="d", child="tool", xyz="0.1 0.02 0", rpy="0 0 0", axis="1 0 0")
    + "</robot>"
)


def _check(chain: UrdfChain, q: np.ndarray) -> None:
    points, jac = chain.point_jacobians(q)
    n = chain.n_joints
    assert points.shape == (n + 1, 3) and jac.shape == (n + 1, 3, n)
    np.testing.assert_allclose(points[-1], chain.position(q), atol=1e-12)
    np.testing.assert_allclose(jac[-1], chain.jacobian(q)[:3], atol=1e-12)
    eps = 1e-6
    for j in range(n):
        dq = np.zeros(n)
        dq[j] = eps
        fd = (chain.point_jacobians(q + dq)[0] - chain.point_jacobians(q - dq)[0]) / (2 * eps)
        np.testing.assert_allclose(jac[:, :, j], fd, atol=1e-8)


def test_panda_points_match_finite_differences_and_the_ee_jacobian() -> None:
    chain = load_urdf_chain(PANDA_URDF, "panda_grasptarget", PANDA_JOINTS)
    assert chain.point_names == (*(f"panda_link{i}" for i in range(1, 8)), "panda_grasptarget")
    rng = np.random.default_rng(0)
    lo, hi = np.array(PANDA_LIMITS["position_lower_rad"]), np.array(PANDA_LIMITS["position_upper_rad"])
    for _ in range(20):
        _check(chain, rng.uniform(lo, hi))


def test_prismatic_fixed_and_reordered_joints() -> None:
    chain = UrdfChain.from_urdf(SMALL_URDF, "tool", ["j3", "j1", "j2"])  # not chain order on purpose
    assert chain.point_names == ("a", "c", "d", "tool")
    rng = np.random.default_rng(1)
    for _ in range(20):
        _check(chain, rng.uniform(-2.0, 2.0, 3))
    # Point k is on joint k's axis: its own revolute joint does not move it.
    _, jac = chain.point_jacobians(np.array([0.3, -0.2, 0.1]))
    np.testing.assert_allclose(jac[0], 0.0, atol=1e-15)  # "a": child of j1 (column 1), on its axis
