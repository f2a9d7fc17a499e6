"""SafetyConfig: validation names the bad field, YAML sections, unknown keys, stable hash."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from robot_rl.core.robot import RobotInterface
from robot_rl.safety import SafetyConfig
from robot_rl.safety.config import manifest_safety_params

BASE: dict[str, Any] = {
    "joint_names": ["j1", "j2"],
    "command_interface": "position",
    "control_period_s": 0.01,
    "position_lower_rad": [-1.0, -2.0],
    "position_upper_rad": [1.0, 2.0],
    "velocity_limit_rad_s": [1.0, 2.0],
    "acceleration_limit_rad_s2": [10.0, 20.0],
}


def make(**changes: Any) -> SafetyConfig:
    return SafetyConfig.from_dict({**BASE, **changes})


def test_valid_config_normalizes_types() -> None:
    cfg = make(position_lower_rad=[-1, -2], position_margin_rad=0)
    assert cfg.joint_names == ("j1", "j2")
    assert cfg.position_lower_rad == (-1.0, -2.0) and all(type(v) is float for v in cfg.position_lower_rad)
    assert cfg.n_joints == 2 and not cfg.has_workspace
    assert cfg.sha256() == make().sha256()  # ints and floats hash alike


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("joint_names", []),
        ("joint_names", ["j1", "j1"]),
        ("joint_names", "j1"),
        ("command_interface", "torque"),
        ("control_period_s", 0.0),
        ("control_period_s", math.nan),
        ("position_lower_rad", [-1.0]),
        ("position_lower_rad", [-1.0, math.inf]),
        ("position_upper_rad", [1.0, -3.0]),
        ("position_upper_rad", [1.0, "2"]),
        ("velocity_limit_rad_s", [1.0, 0.0]),
        ("velocity_limit_rad_s", [1.0, -2.0]),
        ("acceleration_limit_rad_s2", [10.0]),
        ("acceleration_limit_rad_s2", [10.0, math.nan]),
        ("effort_limit", [1.0]),
        ("position_margin_rad", -0.1),
        ("position_margin_rad", True),
        ("stale_observation_periods", 0.0),
        ("command_timeout_s", -1.0),
        ("workspace_lower_m", [0.0, 0.0, 0.0]),
    ],
)
def test_bad_field_is_named(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        make(**{field: value})


def test_margin_that_closes_the_range_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        make(position_margin_rad=1.0)


def test_effort_interface_needs_effort_limits() -> None:
    with pytest.raises(ValueError, match="effort_limit"):
        make(command_interface="effort")
    assert make(command_interface="effort", effort_limit=[5, 5]).effort_limit == (5.0, 5.0)


def test_workspace_rules() -> None:
    box = {"workspace_lower_m": [-1, -1, 0], "workspace_upper_m": [1, 1, 1]}
    assert make(**box).has_workspace
    with pytest.raises(ValueError, match="workspace_lower_m must be < workspace_upper_m"):
        make(workspace_lower_m=[1, -1, 0], workspace_upper_m=[1, 1, 1])
    with pytest.raises(ValueError, match="3 values"):
        make(workspace_lower_m=[0, 0], workspace_upper_m=[1, 1])
    with pytest.raises(ValueError, match="effort"):
        make(command_interface="effort", effort_limit=[5, 5], **box)


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ValueError) as info:
        make(control_period_s=-1.0, velocity_limit_rad_s=[0.0, 1.0])
    assert "control_period_s" in str(info.value) and "velocity_limit_rad_s" in str(info.value)


def test_unknown_and_missing_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown safety config keys \['max_speed', 'velocity_limits'\]"):
        SafetyConfig.from_dict({**BASE, "velocity_limits": [1, 1], "max_speed": 1})
    with pytest.raises(ValueError, match=r"missing safety config keys.*control_period_s"):
        SafetyConfig.from_dict({k: v for k, v in BASE.items() if k != "control_period_s"})


def test_json_round_trip_and_hash() -> None:
    cfg = make(workspace_lower_m=[-1, -1, 0], workspace_upper_m=[1, 1, 1])
    assert SafetyConfig.from_dict(cfg.to_json()) == cfg
    h = cfg.sha256()
    assert h == SafetyConfig.from_dict(cfg.to_json()).sha256() and len(h) == 64
    assert make(command_timeout_s=0.4).sha256() != make().sha256()
    assert make(velocity_limit_rad_s=[1.0, 2.5]).sha256() != make().sha256()


def test_for_joints_default_acceleration() -> None:
    cfg = SafetyConfig.for_joints(["a", "b"], "velocity", 0.02, [-1, -1], [1, 1], [2, 3], position_margin_rad=0.1)
    assert cfg.acceleration_limit_rad_s2 == (20.0, 30.0)
    assert cfg.position_margin_rad == 0.1 and cfg.effort_limit == ()


YAML_NESTED = """\
/**/policy_node:
  ros__parameters:
    bundle_dir: models/panda_reach
    safety:
      joint_names: [j1, j2]
      command_interface: position
      control_period_s: 0.01
      position_lower_rad: [-1.0, -2.0]
      position_upper_rad: [1.0, 2.0]
      velocity_limit_rad_s: [1.0, 2.0]
      acceleration_limit_rad_s2: [10.0, 20.0]
      position_margin_rad: 0.05
"""


def test_from_yaml_wildcard_key(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(YAML_NESTED)
    cfg = SafetyConfig.from_yaml(path)
    assert cfg == make(position_margin_rad=0.05)


def test_from_yaml_plain_node_key_and_flat_keys(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(YAML_NESTED.replace("/**/policy_node:", "policy_node:"))
    assert SafetyConfig.from_yaml(path).position_margin_rad == 0.05
    flat = "my_node:\n  ros__parameters:\n" + "".join(
        f"    safety.{k}: {v}\n" for k, v in BASE.items() if k != "command_interface"
    )
    path.write_text(flat + "    safety.command_interface: velocity\n")
    assert SafetyConfig.from_yaml(path, node_name="my_node").command_interface == "velocity"


def test_from_yaml_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        SafetyConfig.from_yaml(missing)
    path = tmp_path / "params.yaml"
    path.write_text(YAML_NESTED.replace("policy_node", "other_node"))
    with pytest.raises(ValueError, match=r"params\.yaml.*policy_node"):
        SafetyConfig.from_yaml(path)
    path.write_text("policy_node:\n  ros__parameters:\n    bundle_dir: x\n")
    with pytest.raises(ValueError, match=r"params\.yaml.*no 'safety'"):
        SafetyConfig.from_yaml(path)
    path.write_text(YAML_NESTED.replace("position_margin_rad", "position_margin"))
    with pytest.raises(ValueError, match=r"params\.yaml.*unknown safety config keys \['position_margin'\]"):
        SafetyConfig.from_yaml(path)


# ---------------------------------------------------------------------------------------------- shipped files
REPO = Path(__file__).resolve().parents[2]
SHIPPED_YAML = sorted((REPO / "launch" / "params").glob("*.yaml"))
# The robot each shipped file is written for (a template is for any robot: the caller gives interface and rate).
SHIPPED_ENV = {"cartpole_sim.yaml": "robot_rl/CartPoleBalance-v0", "panda_reach_sim.yaml": "robot_rl/PandaReach-v0"}
OVERLAYS = {"hil_sim.yaml"}
"""Loaded over a robot's parameter file (launch/hil_train.launch.xml): they add topics and settings, never limits."""


def _bundle_robot(env_id: str) -> tuple[RobotInterface, float]:
    """The robot interface and control rate a bundle trained on `env_id` records (what the node reads)."""
    import gymnasium as gym

    import sim  # noqa: F401  (registers the robot_rl/* envs)
    from robot_rl.train.envs import robot_interface_of

    env = gym.make(env_id)
    try:
        robot = robot_interface_of(env)
        assert robot is not None
        return robot, 1.0 / float(env.unwrapped.control_dt_s)
    finally:
        env.close()


def test_there_are_shipped_parameter_files() -> None:
    assert {p.name for p in SHIPPED_YAML} >= {*SHIPPED_ENV, "robot_template.yaml"}


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=lambda p: p.name)
def test_every_shipped_yaml_loads_like_the_node_reads_it(path: Path) -> None:
    from ros_nodes.core.deployment import _default_safety, safety_params

    params = yaml.safe_load(path.read_text())["/**/policy_node"]["ros__parameters"]
    if path.name in OVERLAYS:  # an overlay must not loosen (or set) the robot file's limits
        assert not any(k == "safety" or k.startswith("safety.") for k in params), path.name
        return
    env_id = SHIPPED_ENV.get(path.name)
    if env_id is None:  # the template: every limit is in the file; the bundle gives the interface and rate
        cfg = SafetyConfig.from_yaml(path, defaults={"command_interface": "position", "control_period_s": 0.01})
        assert cfg.joint_names == tuple(params["safety"]["joint_names"])
        return
    robot, control_hz = _bundle_robot(env_id)
    cfg = SafetyConfig.from_yaml(path, defaults=manifest_safety_params(robot, control_hz))
    # The very limits the policy node configures from this file and such a bundle (rclpy flattens `safety:`).
    flat = {f"safety.{k}": v for k, v in params.get("safety", {}).items()}
    assert cfg == _default_safety(robot, control_hz, safety_params(flat))


@pytest.mark.parametrize("path", [p for p in SHIPPED_YAML if p.name in SHIPPED_ENV], ids=lambda p: p.name)
def test_a_shipped_yaml_without_the_bundle_says_what_is_missing(path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing safety config keys .*manifest_safety_params"):
        SafetyConfig.from_yaml(path)


def test_empty_values_and_a_missing_safety_mapping_take_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(YAML_NESTED.replace("position_margin_rad: 0.05", "position_margin_rad: ''"))
    assert SafetyConfig.from_yaml(path, defaults={"position_margin_rad": 0.1}).position_margin_rad == 0.1
    path.write_text("/**/policy_node:\n  ros__parameters:\n    bundle_dir: x\n")
    assert SafetyConfig.from_yaml(path, defaults=BASE) == make()


def test_the_safety_docs_name_only_shipped_launch_files() -> None:
    text = (REPO / "docs" / "safety.md").read_text()
    named = set(re.findall(r"launch/[\w./-]+\.(?:yaml|xml)", text))
    assert "launch/params/panda_reach_sim.yaml" in named  # the quick start's file
    assert [n for n in sorted(named) if not (REPO / n).is_file()] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("plausibility_position_margin_rad", -0.1),
        ("plausibility_velocity_factor", 0.5),
        ("plausibility_jump_slack_rad", float("nan")),
        ("plausibility_stamp_jump_s", 0.0),
        ("plausibility_recovery_readings", 0),
        ("plausibility_recovery_readings", 2.5),
    ],
)
def test_bad_plausibility_parameters_are_named(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        make(**{field: value})


def test_plausibility_defaults_leave_the_json_and_hash_unchanged() -> None:
    cfg = make()
    assert not any(k.startswith("plausibility") for k in cfg.to_json())  # configs hashed before the link existed
    changed = make(plausibility_recovery_readings=5)
    assert changed.to_json()["plausibility_recovery_readings"] == 5 and changed.sha256() != cfg.sha256()
    assert SafetyConfig.from_dict(changed.to_json()) == changed


LINKS_WITH_FILTER = [
    "estop", "observation_watchdog", "command_watchdog", "plausibility", "shape", "non_finite", "my_filter",
    "joint_limits", "workspace",
]  # fmt: skip


def test_link_params_nested_flat_and_explicit_forms_agree() -> None:
    nested = make(links=LINKS_WITH_FILTER, my_filter={"gain": 2, "points": [0.0, 1.0]})
    flat = SafetyConfig.from_dict({**BASE, "links": LINKS_WITH_FILTER, "my_filter.gain": 2,
                                   "my_filter.points": [0.0, 1.0]})  # fmt: skip
    explicit = make(links=LINKS_WITH_FILTER, link_params={"my_filter": {"points": (0.0, 1.0), "gain": 2}})
    assert nested == flat == explicit
    assert nested.params_of("my_filter") == {"gain": 2, "points": (0.0, 1.0)}
    assert nested.params_of("workspace") == {}
    assert hash(nested) == hash(flat)
    assert SafetyConfig.from_dict(nested.to_json()) == nested
    assert nested.sha256() != make(links=LINKS_WITH_FILTER).sha256()


def test_link_params_absent_leave_the_json_and_hash_unchanged() -> None:
    assert "link_params" not in make().to_json()


def test_link_params_only_for_listed_links_and_ros_parameter_values() -> None:
    with pytest.raises(ValueError, match=r"unknown safety config keys \['my_filter.gain'\]"):
        make(**{"my_filter.gain": 2})  # not in `links`: a typo must not be ignored
    with pytest.raises(ValueError, match="link_params names 'other', which is not in links"):
        make(links=LINKS_WITH_FILTER, link_params={"other": {"x": 1}})
    with pytest.raises(ValueError, match=r"my_filter.table must be a number, string, boolean or a list"):
        make(links=LINKS_WITH_FILTER, my_filter={"table": {"a": 1}})


def test_link_params_from_a_ros_parameter_file(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    doc = {"/**/policy_node": {"ros__parameters": {"safety": {**BASE, "links": LINKS_WITH_FILTER,
                                                              "my_filter": {"gain": 0.5}}}}}  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    assert SafetyConfig.from_yaml(path).params_of("my_filter") == {"gain": 0.5}
