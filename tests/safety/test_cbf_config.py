"""The cbf link's parameters: nested or flat in the safety YAML, every error naming `cbf.<parameter>`, and the
refusals at construction (effort interface, no URDF chain, wrong joint order, a solver that is not installed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from robot_rl.safety.cbf import CbfConfig
from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.links.cbf import CbfLink
from robot_rl.safety.urdf_kinematics import load_urdf_chain
from tests.safety.cbf_setup import CHAIN_LINKS, PANDA_JOINTS, PANDA_LIMITS, PANDA_URDF, panda_chain, panda_config


def _base(interface: str = "velocity") -> dict[str, Any]:
    return {
        "joint_names": list(PANDA_JOINTS),
        "command_interface": interface,
        "control_period_s": 0.01,
        **PANDA_LIMITS,
        "effort_limit": [87.0] * 4 + [12.0] * 3,
        "links": list(CHAIN_LINKS),
    }


def test_nested_and_flat_parameters_give_the_same_config() -> None:
    nested = SafetyConfig.from_dict({**_base(), "cbf": {"gamma": 0.3, "spheres_m": [0.5, 0, 0.4, 0.1]}})
    flat = SafetyConfig.from_dict({**_base(), "cbf.gamma": 0.3, "cbf.spheres_m": [0.5, 0, 0.4, 0.1]})
    assert nested == flat
    cbf = CbfConfig.from_params(nested.params_of("cbf"), 0.01)
    assert cbf.gamma == 0.3 and cbf.spheres_m == (0.5, 0.0, 0.4, 0.1) and cbf.n_spheres == 1
    assert cbf.solver == "daqp" and cbf.control_points == "links+ee" and cbf.joint_limits
    assert CbfConfig.from_params({}) == CbfConfig()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"spheres_m": [0.1] * 7}, r"cbf\.spheres_m must have 4 values per sphere \(x, y, z, radius\), got 7"),
        ({"spheres_m": [0.5, 0.0, 0.4, 0.0]}, r"cbf\.spheres_m: sphere 0 needs a radius > 0"),
        ({"capsules_m": [0.1] * 8}, r"cbf\.capsules_m must have 7 values per capsule"),
        ({"halfspaces": [0.0, 0.0, 0.0, 1.0]}, r"cbf\.halfspaces: half-space 0 has a zero normal"),
        ({"halfspaces": [0.0, 0.0, 1.0]}, r"cbf\.halfspaces must have 4 values per half-space"),
        ({"gamma": 0.0}, r"cbf\.gamma must be in \(0, 1\]"),
        ({"gamma": 1.5}, r"cbf\.gamma must be in \(0, 1\]"),
        ({"gamma": True}, r"cbf\.gamma must be a number"),
        ({"gamma": "fast"}, r"cbf\.gamma must be a number"),
        ({"solver": "gurobi"}, r"cbf\.solver must be one of"),
        ({"solver": "qpsolvers:"}, r"cbf\.solver must be one of"),
        ({"time_budget_s": 0.02}, r"cbf\.time_budget_s must be below the control period 0\.01"),
        ({"time_budget_s": -1.0}, r"cbf\.time_budget_s must be finite and > 0"),
        ({"margin_m": -0.1}, r"cbf\.margin_m must be finite and >= 0"),
        ({"point_radius_m": float("nan")}, r"cbf\.point_radius_m must be finite and >= 0"),
        ({"box_lower_m": [0.0, 0.0, 0.0]}, r"cbf\.box_lower_m and cbf\.box_upper_m must be given together"),
        ({"box_lower_m": [0, 0, 0], "box_upper_m": [1, -1, 1]}, r"cbf\.box_lower_m must be finite and <"),
        ({"control_points": "all"}, r"cbf\.control_points must be one of \['links\+ee', 'ee'\]"),
        ({"joint_limits": "yes"}, r"cbf\.joint_limits must be true or false"),
        ({"spheres_m": 0.5}, r"cbf\.spheres_m must be a list of numbers"),
        ({"alpha": 0.3}, r"unknown cbf parameters \['cbf\.alpha'\]"),
    ],
)
def test_errors_name_the_parameter(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CbfConfig.from_params(params, 0.01)
    # The same message when the chain builds the link from the safety YAML.
    with pytest.raises(ValueError, match=match):
        CbfLink(SafetyConfig.from_dict({**_base(), "cbf": params}), panda_chain())


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValueError) as info:
        CbfConfig.from_params({"gamma": 2.0, "spheres_m": [0.1] * 5, "solver": "x"})
    assert all(name in str(info.value) for name in ("cbf.gamma", "cbf.spheres_m", "cbf.solver"))


def test_refusals_at_construction() -> None:
    with pytest.raises(ValueError, match="command_interface 'effort'"):
        CbfLink(SafetyConfig.from_dict(_base("effort")), panda_chain())
    with pytest.raises(ValueError, match="needs the robot's UrdfChain"):
        CbfLink(panda_config(), None)
    reversed_chain = load_urdf_chain(PANDA_URDF, "panda_grasptarget", PANDA_JOINTS[::-1])
    with pytest.raises(ValueError, match="differ from the safety config's"):
        CbfLink(panda_config(), reversed_chain)
    with pytest.raises(ValueError, match="qpsolvers has no installed solver 'nope'"):
        CbfLink(panda_config(solver="qpsolvers:nope"), panda_chain())


def test_control_points_and_row_labels() -> None:
    link = CbfLink(panda_config(control_points="ee", joint_limits=False), panda_chain())
    labels = link.filter_.row_labels
    assert labels[0] == "sphere 0 vs panda_grasptarget"
    assert len(labels) == 1 + 1 + 6  # one sphere, one half-space, the box's six: for the end effector only
    full = CbfLink(panda_config(), panda_chain()).filter_
    assert full.n_rows == 14 + 8 * (1 + 1 + 6)  # joint limits + 8 control points x 8 obstacles
    a, b, h = full.rows(np.zeros(7), 0.01)
    assert a.shape == (full.n_rows, 7) and b.shape == h.shape == (full.n_rows,)
