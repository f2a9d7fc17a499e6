"""The cbf YAML example in docs/safety.md is copy-pasteable: it loads the way the node reads it and builds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from robot_rl.safety import SafetyConfig, build_chain
from robot_rl.safety.registry import needs_kinematics
from robot_rl.safety.urdf_kinematics import load_urdf_chain

DOC = Path(__file__).resolve().parents[2] / "docs" / "safety.md"
JOINTS = [f"panda_joint{i + 1}" for i in range(7)]


def test_the_documented_cbf_yaml_builds_a_chain(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    block = next(b for b in blocks if "cbf:" in b and "capsules_m" in b)
    path = tmp_path / "params.yaml"
    path.write_text(block)
    params = yaml.safe_load(block)["/**/policy_node"]["ros__parameters"]
    limits = {
        "joint_names": JOINTS, "command_interface": "velocity", "control_period_s": 0.05,
        "position_lower_rad": [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973],
        "position_upper_rad": [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973],
        "velocity_limit_rad_s": [2.175] * 4 + [2.61] * 3, "acceleration_limit_rad_s2": [15.0] * 7,
    }  # fmt: skip
    cfg = SafetyConfig.from_yaml(path, defaults=limits)
    assert needs_kinematics(cfg) and cfg.params_of("cbf")["point_radius_m"] == 0.05
    chain = build_chain(cfg, load_urdf_chain(params["urdf"], params["ee_link"], JOINTS))
    q = np.array([0.0, -0.467, 0.0, -2.908, 0.0, 2.441, 0.785])
    chain.reset(q)
    out = chain.filter(np.zeros(7), now_s=0.0, joint_pos_rad=q, joint_vel_rad_s=None, observation_stamp_s=0.0,
                       command_stamp_s=0.0)  # fmt: skip
    assert not out.held and np.array_equal(out.action, np.zeros(7))
