"""Shared set-up of the cbf tests: the Panda chain, a safety config with obstacles, a Step for the link."""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.link import Step
from robot_rl.safety.urdf_kinematics import UrdfChain, load_urdf_chain

PANDA_URDF = "pybullet_data:franka_panda/panda.urdf"
PANDA_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
PANDA_HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
PANDA_LIMITS: dict[str, Any] = {
    "position_lower_rad": [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973],
    "position_upper_rad": [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973],
    "velocity_limit_rad_s": [2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61],
    "acceleration_limit_rad_s2": [15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0],
}
PERIOD_S = 0.01
CHAIN_LINKS = (
    "estop",
    "observation_watchdog",
    "command_watchdog",
    "plausibility",
    "shape",
    "non_finite",
    "cbf",
    "joint_limits",
    "workspace",
)
SPHERE_M = (0.45, 0.0, 0.49, 0.05)
"""A sphere 0.15 m in front of the Panda's grasp target at home (0.307, 0, 0.485)."""


def panda_chain() -> UrdfChain:
    return load_urdf_chain(PANDA_URDF, "panda_grasptarget", PANDA_JOINTS)


def panda_config(interface: str = "velocity", **cbf: Any) -> SafetyConfig:
    params: dict[str, Any] = {
        "spheres_m": list(SPHERE_M),
        "halfspaces": [0.0, 0.0, -1.0, -0.05],  # z >= 0.05 m: every control point above the table
        "box_lower_m": [-0.9, -0.9, -0.2],
        "box_upper_m": [0.9, 0.9, 1.3],
        "gamma": 0.2,
        # Most of a period: a test must not depend on timing (a niced process on a busy machine can be
        # preempted for ~4 ms in the middle of a solve); the budget itself has its own test.
        "time_budget_s": 0.009,
    }
    params.update(cbf)
    return SafetyConfig.from_dict(
        {
            "joint_names": list(PANDA_JOINTS),
            "command_interface": interface,
            "control_period_s": PERIOD_S,
            **PANDA_LIMITS,
            "links": list(CHAIN_LINKS),
            "cbf": params,
        }
    )


def step(q: np.ndarray, v_prev: np.ndarray, prev_target: np.ndarray | None = None, dt_s: float = PERIOD_S) -> Step:
    """A Step as the chain builds it (only what the cbf link reads matters)."""
    n = len(q)
    return Step(0.0, 0.0, dt_s, min(dt_s, PERIOD_S), q, n, 0.0, 0.0, "", prev_target, v_prev, None)
