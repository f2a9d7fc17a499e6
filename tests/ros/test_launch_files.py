"""Launch files, parameter YAML, the portable-subset parser, ROS packaging and `robot-rl deploy` end to end.

Everything but the end-to-end bringup is ROS-free (stdlib XML + PyYAML + zipfile).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from ros_nodes import launch_subset as ls
from ros_nodes.bringup import EXIT_LIFECYCLE, link_ros_package, node_command
from ros_nodes.core.deployment import PolicyNodeConfig
from ros_nodes.launch_subset import LaunchSubsetError, ParamFile, parse, validate

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.xml"))
PARAM_FILES = sorted((LAUNCH / "params").glob("*.yaml"))
CARTPOLE = "robot_rl/CartPoleBalance-v0"


def write_launch(tmp_path: Path, body: str, name: str = "t.launch.xml") -> Path:
    path = tmp_path / name
    path.write_text(f"<launch>\n{body}\n</launch>\n")
    return path


@pytest.fixture
def params_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("/**/policy_node:\n  ros__parameters:\n    control_hz: 10.0\n")
    return path


# ---------------------------------------------------------------------------------------------- the shipped files
def test_there_are_launch_files() -> None:
    assert {p.name for p in LAUNCH_FILES} >= {"sim_deploy.launch.xml", "robot_deploy.launch.xml"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_file_is_inside_the_subset(path: Path) -> None:
    assert validate(path) == []


def test_sim_deploy_resolves_defaults_and_overrides() -> None:
    desc = parse(LAUNCH / "sim_deploy.launch.xml", {"bundle": "/b", "env_id": CARTPOLE, "teleop": "false"})
    assert desc.args["params_file"] == str(REPO / "launch/params/panda_reach_sim.yaml")  # find-pkg-share → checkout
    assert [n.name for n in desc.enabled_nodes] == ["sim_robot", "policy_node"]  # no teleop, no scripted takeover
    sim, policy = desc.enabled_nodes
    assert sim.inline_params == {"env_id": CARTPOLE, "backend": "mujoco", "seed": 0}
    assert policy.inline_params == {"bundle_dir": "/b", "expected_sha256": "", "record_dir": "", "stats_path": ""}
    assert policy.param_files == (REPO / "launch/params/panda_reach_sim.yaml",)
    assert policy.executable.lifecycle and not sim.executable.lifecycle
    on = parse(LAUNCH / "sim_deploy.launch.xml", {"bundle": "/b", "scripted_takeover": "True"})
    assert [n.name for n in on.enabled_nodes] == ["sim_robot", "policy_node", "teleop", "scripted_operator"]


def test_robot_deploy_remaps_the_joystick_and_requires_a_params_file() -> None:
    with pytest.raises(LaunchSubsetError, match="params_file"):
        parse(LAUNCH / "robot_deploy.launch.xml", {"bundle": "/b"})
    desc = parse(
        LAUNCH / "robot_deploy.launch.xml",
        {"bundle": "/b", "joy_topic": "/gamepad", "params_file": str(LAUNCH / "params/robot_template.yaml")},
    )
    teleop = next(n for n in desc.nodes if n.exec == "teleop")
    assert teleop.remaps == (("/joy", "/gamepad"),)
    policy = next(n for n in desc.nodes if n.exec == "policy_node")
    assert policy.inline_params["controller"] == ""


# ---------------------------------------------------------------------------------------------- parameter YAML
@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_param_files_have_node_sections_with_ros_parameters(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict) and doc
    for key, section in doc.items():
        assert key.startswith("/**/") and key[4:] in ls.EXECUTABLES, key
        assert isinstance(section["ros__parameters"], dict), key
    assert "/**/policy_node" in doc
    policy = doc["/**/policy_node"]["ros__parameters"]
    known = {f.name for f in dataclasses.fields(PolicyNodeConfig)} | {"safety", "stats_path"}
    assert set(policy) <= known, set(policy) - known
    assert ls.param_file_problems(path) == []


def test_panda_limits_are_the_urdf_ones_and_form_a_valid_safety_config() -> None:
    from robot_rl.safety import SafetyConfig

    doc = yaml.safe_load((LAUNCH / "params/panda_reach_sim.yaml").read_text())
    safety = doc["/**/policy_node"]["ros__parameters"]["safety"]
    assert safety["position_lower_rad"] == [-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671]
    assert safety["position_upper_rad"] == [2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671]
    assert safety["velocity_limit_rad_s"] == [2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]
    assert safety["joint_names"] == [f"panda_joint{i}" for i in range(1, 8)]
    cfg = SafetyConfig.from_dict({**safety, "command_interface": "velocity", "control_period_s": 0.05})
    assert cfg.n_joints == 7
    template = yaml.safe_load((LAUNCH / "params/robot_template.yaml").read_text())
    tsafety = template["/**/policy_node"]["ros__parameters"]["safety"]
    SafetyConfig.from_dict({**tsafety, "command_interface": "velocity", "control_period_s": 0.01})


# ---------------------------------------------------------------------------------------------- parser units
def test_args_defaults_overrides_let_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RR_TEST_ROBOT", "arm7")
    path = write_launch(
        tmp_path,
        """
      <arg name="rate" default="20.0"/>
      <arg name="who" default="$(env RR_TEST_ROBOT)"/>
      <arg name="missing_env" default="$(env RR_TEST_NOT_SET fallback)"/>
      <let name="joined" value="$(var who)-$(var missing_env)"/>
      <node pkg="robot_rl" exec="policy_node">
        <param name="control_hz" value="$(var rate)"/>
        <param name="robot" value="$(var joined)"/>
        <param name="reward_hooks" value="['rlif', 'success']"/>
        <param name="episode_steps" value="7"/>
        <param name="publish_trajectory" value="true"/>
      </node>""",
    )
    desc = parse(path, {"rate": "50.0"})
    assert desc.args == {"rate": "50.0", "who": "arm7", "missing_env": "fallback"}
    (node,) = desc.nodes
    assert node.name == "policy_node" and node.fqn == "/policy_node"  # the executable's own name
    assert node.inline_params == {
        "control_hz": 50.0,
        "robot": "arm7-fallback",
        "reward_hooks": ["rlif", "success"],
        "episode_steps": 7,
        "publish_trajectory": True,
    }


def test_missing_required_arg_is_a_clear_error(tmp_path: Path) -> None:
    path = write_launch(
        tmp_path,
        '<arg name="bundle" description="the bundle"/>'
        '<node pkg="robot_rl" exec="policy_node"><param name="bundle_dir" '
        'value="$(var bundle)"/></node>',
    )
    with pytest.raises(LaunchSubsetError, match=r"'bundle' is required.*bundle:=<value>.*the bundle"):
        parse(path)
    assert validate(path) == []  # validation does not need required arguments


def test_unknown_override_is_rejected(tmp_path: Path) -> None:
    path = write_launch(tmp_path, '<arg name="a" default="1"/><node pkg="robot_rl" exec="teleop" if="$(var a)"/>')
    with pytest.raises(LaunchSubsetError, match=r"unknown launch argument.*'b'"):
        parse(path, {"b": "2"})


@pytest.mark.parametrize(
    ("attr", "value", "enabled"),
    [("if", "true", True), ("if", "0", False), ("unless", "true", False), ("unless", "False", True)],
)
def test_if_unless(tmp_path: Path, attr: str, value: str, enabled: bool) -> None:
    path = write_launch(
        tmp_path, f'<arg name="flag" default="{value}"/><node pkg="robot_rl" exec="teleop" {attr}="$(var flag)"/>'
    )
    (node,) = parse(path).nodes
    assert node.enabled is enabled
    assert node.condition == f"{attr}={value}"


def test_non_boolean_condition_is_rejected(tmp_path: Path) -> None:
    path = write_launch(tmp_path, '<node pkg="robot_rl" exec="teleop" if="maybe"/>')
    with pytest.raises(LaunchSubsetError, match="not a boolean"):
        parse(path)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('<include file="x.launch.xml"/>', "<include> inside <launch> is outside the portable subset"),
        ('<group><node pkg="robot_rl" exec="teleop"/></group>', "<group> inside <launch>"),
        ('<node pkg="robot_rl" exec="teleop" respawn="true"/>', r"attribute\(s\) \['respawn'\]"),
        ('<node pkg="robot_rl" exec="teleop"><env name="A" value="1"/></node>', "<env> inside <node>"),
        ('<node pkg="robot_rl" exec="teleop"><param name="a" value="$(var nope)"/></node>', r"\$\(var nope\) is not "),
        ('<node pkg="robot_rl" exec="teleop"><param name="a" value="$(command ls)"/></node>', "unknown substitution"),
        ('<arg name="x" default="1"/><node pkg="robot_rl" exec="teleop" name="$(env A $(var x))"/>', "nested"),
        ('<node pkg="robot_rl" exec="teleop"><param from="$(find-pkg-share other)/p.yaml"/></node>', "only robot_rl"),
        ('<node pkg="other_pkg" exec="teleop"/>', "only runs robot_rl nodes"),
        ('<node pkg="robot_rl" exec="talker"/>', "not a robot_rl executable"),
        ('<node pkg="robot_rl" exec="teleop"><param name="a" value=""/></node>', "quote it"),
        ('<node pkg="robot_rl" exec="teleop"><param name="a" value="{b: 1}"/></node>', "only scalars and lists"),
        ('<node pkg="robot_rl" exec="teleop"><param name="a" value="[1, two]"/></node>', "one type"),
        ('<node pkg="robot_rl" exec="teleop"/><node pkg="robot_rl" exec="teleop"/>', "share the name /teleop"),
        ('<node pkg="robot_rl" exec="teleop" output="loud"/>', "output='loud'"),
        ('<node pkg="robot_rl" exec="teleop"><remap from="/joy"/></node>', "needs from and to"),
    ],
)
def test_outside_the_subset_is_rejected_and_reported(tmp_path: Path, body: str, match: str) -> None:
    path = write_launch(tmp_path, body)
    with pytest.raises(LaunchSubsetError, match=match):
        parse(path)
    problems = validate(path)
    assert any(__import__("re").search(match, p) for p in problems), problems


def test_param_file_problems_are_detected(tmp_path: Path) -> None:
    def problems_for(text: str | None) -> list[str]:
        f = tmp_path / "params.yaml"
        if text is None:
            f.unlink(missing_ok=True)
        else:
            f.write_text(text)
        path = write_launch(tmp_path, f'<node pkg="robot_rl" exec="policy_node"><param from="{f}"/></node>')
        return validate(path)

    assert any("does not exist" in p for p in problems_for(None))
    assert any("not valid YAML" in p for p in problems_for("a: [1, 2\n"))
    assert any("no 'ros__parameters'" in p for p in problems_for("/**/policy_node:\n  control_hz: 1.0\n"))
    assert any(
        "no section for node 'policy_node'" in p
        for p in problems_for("/**/polcy_node:\n  ros__parameters: {control_hz: 1.0}\n")
    )
    assert problems_for("/**:\n  ros__parameters: {control_hz: 1.0}\n") == []
    # parse() (what bringup uses) refuses a missing file too
    with pytest.raises(LaunchSubsetError, match="does not exist"):
        parse(write_launch(tmp_path, '<node pkg="robot_rl" exec="teleop"><param from="/no/such.yaml"/></node>'))


def test_unused_arg_is_a_warning(tmp_path: Path) -> None:
    path = write_launch(tmp_path, '<arg name="unused" default="1"/><node pkg="robot_rl" exec="teleop"/>')
    assert validate(path) == ["warning: <arg name='unused'> is declared but never used"]


def test_root_must_be_launch(tmp_path: Path) -> None:
    path = tmp_path / "x.launch.xml"
    path.write_text("<robot/>")
    with pytest.raises(LaunchSubsetError, match="expected <launch>"):
        parse(path)


def test_launch_arg_tokens() -> None:
    assert ls.parse_launch_args(["a:=1", "b:=", "c:=x:=y"]) == {"a": "1", "b": "", "c": "x:=y"}
    with pytest.raises(LaunchSubsetError):
        ls.parse_launch_args(["--flag"])


# ---------------------------------------------------------------------------------------------- bringup commands
def test_node_command_keeps_parameter_order_types_and_remaps(tmp_path: Path, params_yaml: Path) -> None:
    path = write_launch(
        tmp_path,
        f"""
      <node pkg="robot_rl" exec="policy_node" name="pol" namespace="arm">
        <param name="record_dir" value="''"/>
        <param from="{params_yaml}"/>
        <param name="control_hz" value="50.0"/>
        <remap from="/joint_states" to="/arm/joint_states"/>
      </node>""",
    )
    (spec,) = parse(path).nodes
    assert isinstance(spec.params[1], ParamFile)
    cmd = node_command(spec, tmp_path, bin_dir=tmp_path / "nobin")
    assert cmd[:3] == [sys.executable, "-m", "ros_nodes.policy_node"]
    args = cmd[cmd.index("--ros-args") + 1 :]
    files = [args[i + 1] for i, a in enumerate(args) if a == "--params-file"]
    assert files[1] == str(params_yaml)  # file order = launch order: the later source wins, as in ros2 launch
    first = yaml.safe_load(Path(files[0]).read_text())
    last = yaml.safe_load(Path(files[2]).read_text())
    assert first == {"/**": {"ros__parameters": {"record_dir": ""}}}
    assert last == {"/**": {"ros__parameters": {"control_hz": 50.0}}}
    assert ["-r", "__node:=pol"] == args[:2] and ["-r", "__ns:=/arm"] == args[2:4]
    assert args[-2:] == ["-r", "/joint_states:=/arm/joint_states"]
    assert spec.fqn == "/arm/pol"


def test_deploy_check_and_dry_run_need_no_ros() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "AMENT"))}
    probe = (
        "import sys; from robot_rl.cli import main; "
        "rc = main(['deploy', '--check', 'launch/sim_deploy.launch.xml']); "
        "rc += main(['deploy', 'launch/sim_deploy.launch.xml', 'bundle:=b', '--dry-run']); "
        "sys.exit(rc or ('rclpy' in sys.modules))"
    )
    assert (
        subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, timeout=60).returncode
        == 0
    )
    out = subprocess.run(
        [sys.executable, "-m", "robot_rl.cli", "deploy", "--check", *map(str, LAUNCH_FILES)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": ok") == len(LAUNCH_FILES)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot_rl.cli",
            "deploy",
            "launch/sim_deploy.launch.xml",
            "bundle:=models/x",
            "--dry-run",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "__node:=policy_node" in out.stdout and "(disabled: if=false)" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "robot_rl.cli", "deploy", "launch/sim_deploy.launch.xml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "bundle:=<value>" in out.stderr


# ---------------------------------------------------------------------------------------------- packaging
EXPECTED_DATA = {
    "share/ament_index/resource_index/packages/robot_rl": False,
    "share/robot_rl/package.xml": False,
    "share/robot_rl/launch/sim_deploy.launch.xml": False,
    "share/robot_rl/launch/robot_deploy.launch.xml": False,
    "share/robot_rl/launch/params/panda_reach_sim.yaml": False,
    "share/robot_rl/launch/params/cartpole_sim.yaml": False,
    "share/robot_rl/launch/params/robot_template.yaml": False,
    **{f"lib/robot_rl/{exe}": True for exe in ls.EXECUTABLES},
}
"""Install-prefix-relative path → must be executable."""


def test_package_xml_and_wrappers_match_the_executables() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "robot_rl"
    assert root.findtext("export/build_type") == "ament_python"
    assert {"rclpy", "lifecycle_msgs", "std_srvs"} <= {e.text for e in root.findall("exec_depend")}
    assert {p.name for p in (LAUNCH / "bin").iterdir()} == set(ls.EXECUTABLES)
    for exe, spec in ls.EXECUTABLES.items():
        wrapper = LAUNCH / "bin" / exe
        assert os.access(wrapper, os.X_OK), f"{wrapper} lost its executable bit (git update-index --chmod=+x)"
        text = wrapper.read_text()
        assert spec.console_script in text and spec.module in text
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    for spec in ls.EXECUTABLES.values():
        assert scripts[spec.console_script] == f"{spec.module}:main"
    data = pyproject["tool"]["setuptools"]["data-files"]
    assert sorted(data["lib/robot_rl"]) == sorted(f"launch/bin/{e}" for e in ls.EXECUTABLES)


def test_wrapper_execs_the_console_script_next_to_it(tmp_path: Path) -> None:
    (tmp_path / "lib/robot_rl").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    wrapper = tmp_path / "lib/robot_rl/teleop"
    wrapper.write_bytes((LAUNCH / "bin/teleop").read_bytes())
    wrapper.chmod(0o755)
    stub = tmp_path / "bin/robot-rl-teleop"
    stub.write_text('#!/bin/sh\necho "stub $*"\n')
    stub.chmod(0o755)
    out = subprocess.run([str(wrapper), "--ros-args", "-r", "__node:=t"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "stub --ros-args -r __node:=t"


@pytest.mark.slow
def test_wheel_installs_the_ros_package_with_executable_wrappers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    had_build_dir = (REPO / "build").exists()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    if not had_build_dir:  # setuptools builds in-tree; stale build/lib files would leak into later wheels
        shutil.rmtree(REPO / "build", ignore_errors=True)
    (wheel,) = wheels.glob("robot_rl-*.whl")
    with zipfile.ZipFile(wheel) as z:
        data_prefix = next(n.split("/data/")[0] for n in z.namelist() if ".data/data/" in n) + "/data/"
        modes = {
            i.filename[len(data_prefix) :]: (i.external_attr >> 16) & 0o777
            for i in z.infolist()
            if i.filename.startswith(data_prefix)
        }
    for rel, executable in EXPECTED_DATA.items():
        assert rel in modes, f"{rel} missing from the wheel ({sorted(modes)})"
        assert bool(modes[rel] & 0o111) is executable, (rel, oct(modes[rel]))
    prefix = tmp_path / "prefix"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--ignore-installed",
            "--no-compile",
            "-q",
            "--prefix",
            str(prefix),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for rel, executable in EXPECTED_DATA.items():
        assert (prefix / rel).is_file(), rel
        assert os.access(prefix / rel, os.X_OK) is executable, rel
    assert os.access(prefix / "bin/robot-rl-policy-node", os.X_OK)  # what the wrappers exec
    _assert_ament_finds(prefix, monkeypatch)


def test_link_ros_package_for_editable_installs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pip install -e . skips data files (pypa/setuptools#3399): `robot-rl deploy --link-ros-package` fills in.
    link_ros_package(tmp_path)
    link_ros_package(tmp_path)  # idempotent
    _assert_ament_finds(tmp_path, monkeypatch)
    assert (tmp_path / "share/robot_rl/launch").resolve() == LAUNCH  # live: edits in the checkout are used
    installed = tmp_path / "share/robot_rl/launch/sim_deploy.launch.xml"
    assert ls.package_share_dir(installed) == REPO


def _assert_ament_finds(prefix: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ament = pytest.importorskip("ament_index_python")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    share = Path(ament.get_package_share_directory("robot_rl"))
    assert share == prefix / "share/robot_rl"
    assert (share / "launch/sim_deploy.launch.xml").is_file()
    assert (share / "launch/params/panda_reach_sim.yaml").is_file()
    assert os.access(Path(ament.get_package_prefix("robot_rl")) / "lib/robot_rl/policy_node", os.X_OK)
    # the launch files there are in the subset, with find-pkg-share resolving to that share directory
    desc = parse(share / "launch/sim_deploy.launch.xml", {"bundle": "/b"})
    assert Path(desc.args["params_file"]).is_file()


# ---------------------------------------------------------------------------------------------- end to end
def _deploy(args: list[str], timeout_s: float = 90.0) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("rclpy", reason="rclpy is not installed (pip install -e '.[ros]')")
    from ros_nodes.ros_env import cleanup_fastdds_shm, isolated_ros_env

    env = isolated_ros_env()
    try:
        return subprocess.run(
            [sys.executable, "-m", "robot_rl.cli", "deploy", *args, "--domain-id", env["ROS_DOMAIN_ID"]],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    finally:
        cleanup_fastdds_shm()


@pytest.mark.slow
def test_deploy_brings_up_sim_policy_and_takeover(cartpole_lqr_bundle: Path, tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    out = _deploy(
        [
            "launch/sim_deploy.launch.xml",
            f"bundle:={cartpole_lqr_bundle}",
            f"env_id:={CARTPOLE}",
            "params_file:=launch/params/cartpole_sim.yaml",
            "teleop:=false",
            "scripted_takeover:=true",
            f"stats_path:={stats}",
            "--duration-s",
            "5",
        ]
    )
    log = out.stdout + out.stderr
    assert "[bringup] /policy_node: active" in log, log
    assert "[policy_node]" in log and "[sim_robot]" in log  # children's output, prefixed
    assert "summary: sim_robot exit 0, policy_node exit 0, scripted_operator exit 0" in log, log
    assert out.returncode == 0, log
    summary: dict[str, Any] = json.loads(stats.read_text())  # written by the policy node on deactivate
    assert summary["loop"]["ticks"] > 50  # 50 Hz for ~5 s
    assert summary["intervention_steps"] > 0  # the scripted takeover reached the arbiter
    assert summary["last_error"] == ""


@pytest.mark.slow
def test_deploy_reports_a_refused_configure(cartpole_lqr_bundle: Path, tmp_path: Path) -> None:
    # A bundle that verifies (bringup pins it) but that the node refuses: it is for another robot.
    params = yaml.safe_load((LAUNCH / "params/cartpole_sim.yaml").read_text())
    params["/**/policy_node"]["ros__parameters"]["robot"] = "not_this_robot"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    out = _deploy(
        [
            "launch/sim_deploy.launch.xml",
            f"bundle:={cartpole_lqr_bundle}",
            f"env_id:={CARTPOLE}",
            f"params_file:={params_file}",
            "teleop:=false",
            "--duration-s",
            "5",
        ]
    )
    log = out.stdout + out.stderr
    assert out.returncode == EXIT_LIFECYCLE, log
    # bringup's summary carries the node's own reason
    assert "error: /policy_node refused to configure (state unconfigured): configure refused:" in log, log
    assert "this deployment is for 'not_this_robot'" in log
    assert "policy_node exit" in log
    # A missing bundle is refused by bringup's own check, before any node starts.
    out = _deploy(["launch/sim_deploy.launch.xml", f"bundle:={tmp_path / 'no_bundle'}", "--duration-s", "5"])
    assert out.returncode == EXIT_LIFECYCLE and "bundle refused:" in out.stderr and "does not exist" in out.stderr


@pytest.mark.parametrize("name", ["hil_train.launch.xml", "hil_robot.launch.xml"])
def test_hil_launch_files_leave_the_learners_settings_to_the_parameter_file(name: str) -> None:
    """An inline <param> wins over the hil_params_file: a launch that also set the learner's algorithm (or anything
    hil_sim.yaml sets) would silently override what the user wrote in the file."""
    robot_params = str(LAUNCH / "params" / "panda_reach_sim.yaml")
    args = {"bundle": "/b", "run_dir": "/r"} | ({"params_file": robot_params} if "robot" in name else {})
    desc = parse(LAUNCH / name, args)
    (learner,) = [n for n in desc.enabled_nodes if n.name == "learner"]
    from_file = yaml.safe_load((LAUNCH / "params" / "hil_sim.yaml").read_text())["/**/learner"]["ros__parameters"]
    assert "algo" in from_file and not set(learner.inline_params) & set(from_file)
