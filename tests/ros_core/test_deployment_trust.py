"""Pinned by default (issue 11): the node's expected_sha256 / trusted_keys parameters and the pin `robot-rl deploy`
writes. ROS-free: `build_deployment` and `ros_nodes.bundle_pin` on parsed launch files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from robot_rl.export.errors import BundleError
from robot_rl.export.manifest import MANIFEST_FILE, ONNX_FILE, sha256_file
from robot_rl.export.signing import generate_key, sign_bundle
from ros_nodes.bringup import EXIT_LIFECYCLE, EXIT_OK, main, node_command
from ros_nodes.bundle_pin import node_params, pin_bundles
from ros_nodes.core.deployment import PolicyNodeConfig, build_deployment
from ros_nodes.launch_subset import parse

REPO = Path(__file__).resolve().parents[2]
SIM_LAUNCH = REPO / "launch" / "sim_deploy.launch.xml"
ROBOT_LAUNCH = REPO / "launch" / "robot_deploy.launch.xml"


@pytest.fixture
def bundle(reach_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(reach_bundle, dst)
    return dst


def _swap_model(bundle_dir: Path, donor: Path) -> None:
    """Replace the model by another consistent one and re-hash the manifest (what a pin must catch)."""
    shutil.copyfile(donor / ONNX_FILE, bundle_dir / ONNX_FILE)
    path = bundle_dir / MANIFEST_FILE
    data = json.loads(path.read_text())
    data["onnx_sha256"] = sha256_file(bundle_dir / ONNX_FILE)
    data["policy_spec"] = json.loads((donor / MANIFEST_FILE).read_text())["policy_spec"]
    path.write_text(json.dumps(data))


# --- parameters -------------------------------------------------------------------------------------


def test_trust_parameters_parse_and_bad_pins_are_refused() -> None:
    cfg = PolicyNodeConfig.from_params({"trusted_keys": ["a.pub.pem", "b.pub.pem"], "expected_sha256": "AB" * 32})
    assert cfg.trusted_keys == ("a.pub.pem", "b.pub.pem")
    assert PolicyNodeConfig.from_params({"trusted_keys": "a.pub.pem"}).trusted_keys == ("a.pub.pem",)
    assert PolicyNodeConfig.from_params({"trusted_keys": []}).trusted_keys == ()
    assert PolicyNodeConfig.parameter_defaults()["trusted_keys"] == []
    with pytest.raises(ValueError, match="64 hex digits"):
        PolicyNodeConfig.from_params({"expected_sha256": "abc"})


def test_unpinned_deployment_works_but_says_so(bundle: Path) -> None:
    dep = build_deployment({"bundle_dir": str(bundle)})
    ok, message = dep.trust_status()
    assert not ok and message.startswith("unpinned")
    pinned = build_deployment({"bundle_dir": str(bundle), "expected_sha256": sha256_file(bundle / ONNX_FILE)})
    ok, message = pinned.trust_status()
    assert ok and message.startswith("pinned sha256")


def test_pinned_deployment_refuses_a_swapped_rehashed_bundle(
    bundle: Path, reach_position_bundle: Path, tmp_path: Path
) -> None:
    pin = sha256_file(bundle / ONNX_FILE)
    _swap_model(bundle, reach_position_bundle)
    build_deployment({"bundle_dir": str(bundle)})  # consistent on its own: only the pin can tell
    with pytest.raises(BundleError, match="pinned"):
        build_deployment({"bundle_dir": str(bundle), "expected_sha256": pin})


def test_trusted_keys_parameter_requires_a_signature(bundle: Path, tmp_path: Path) -> None:
    private, public, kid = generate_key(tmp_path / "lab.pem")
    params = {"bundle_dir": str(bundle), "trusted_keys": [str(public)]}
    with pytest.raises(BundleError, match="not signed"):
        build_deployment(params)
    sign_bundle(bundle, private)
    dep = build_deployment({**params, "expected_sha256": sha256_file(bundle / ONNX_FILE)})
    assert dep.policy.signer_key_id == kid
    assert dep.trust_status() == (True, f"pinned sha256 {sha256_file(bundle / ONNX_FILE)[:12]}; signed by key {kid}")


# --- robot-rl deploy writes the pin -------------------------------------------------------------------


def test_deploy_pins_the_verified_hash(bundle: Path, tmp_path: Path) -> None:
    desc = parse(SIM_LAUNCH, {"bundle": str(bundle), "teleop": "false"})
    assert node_params(next(n for n in desc.nodes if n.exec == "policy_node"))["expected_sha256"] == ""
    pinned, notes = pin_bundles(desc)
    policy = next(n for n in pinned.nodes if n.exec == "policy_node")
    sha = sha256_file(bundle / ONNX_FILE)
    assert node_params(policy)["expected_sha256"] == sha
    assert any(sha in note for note in notes)
    # ... and it reaches the node: the last parameter file on its command line carries the pin.
    cmd = node_command(policy, tmp_path)
    last = Path(cmd[len(cmd) - 1 - cmd[::-1].index("--params-file") + 1])
    assert yaml.safe_load(last.read_text()) == {"/**": {"ros__parameters": {"expected_sha256": sha}}}
    # The other nodes are untouched.
    assert [n for n in pinned.nodes if n.exec != "policy_node"] == [n for n in desc.nodes if n.exec != "policy_node"]


def test_deploy_refuses_a_bundle_that_differs_from_a_given_pin(
    bundle: Path, reach_position_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pin = sha256_file(bundle / ONNX_FILE)
    _swap_model(bundle, reach_position_bundle)
    desc = parse(SIM_LAUNCH, {"bundle": str(bundle), "expected_sha256": pin})
    with pytest.raises(BundleError, match="pinned"):
        pin_bundles(desc)
    # The CLI refuses before any node starts (a dry run only reports it).
    run_args = [str(SIM_LAUNCH), f"bundle:={bundle}", f"expected_sha256:={pin}", "--duration-s", "0"]
    assert main(run_args) == EXIT_LIFECYCLE
    assert "bundle refused: sha256 mismatch" in capsys.readouterr().err
    assert main([str(SIM_LAUNCH), f"bundle:={bundle}", f"expected_sha256:={pin}", "--dry-run"]) == EXIT_OK
    assert "a real run would refuse it" in capsys.readouterr().out


def test_deploy_checks_trusted_keys_from_the_params_file(bundle: Path, tmp_path: Path) -> None:
    private, public, _ = generate_key(tmp_path / "lab.pem")
    params = tmp_path / "robot.yaml"
    template = yaml.safe_load((REPO / "launch/params/robot_template.yaml").read_text())
    template["/**/policy_node"]["ros__parameters"]["trusted_keys"] = [str(public)]
    params.write_text(yaml.safe_dump(template))
    desc = parse(ROBOT_LAUNCH, {"bundle": str(bundle), "params_file": str(params)})
    with pytest.raises(BundleError, match="not signed"):
        pin_bundles(desc)
    sign_bundle(bundle, private)
    pinned, notes = pin_bundles(desc)
    assert "signed by key" in notes[0]
    assert node_params(pinned.nodes[0])["expected_sha256"] == sha256_file(bundle / ONNX_FILE)


@pytest.mark.parametrize("launch_file", [SIM_LAUNCH, ROBOT_LAUNCH], ids=lambda p: p.name)
def test_launch_files_take_a_pin_argument(launch_file: Path, tmp_path: Path) -> None:
    args = {
        "bundle": "/b",
        "params_file": str(REPO / "launch/params/robot_template.yaml"),
        "expected_sha256": "ab" * 32,
    }
    desc = parse(launch_file, args)
    policy = next(n for n in desc.nodes if n.exec == "policy_node")
    assert node_params(policy)["expected_sha256"] == "ab" * 32
    assert "expected_sha256" in {a.name for a in desc.declared}


@pytest.mark.parametrize("path", sorted((REPO / "launch" / "params").glob("*.yaml")), ids=lambda p: p.name)
def test_param_files_document_the_trust_parameters(path: Path) -> None:
    text = path.read_text()
    assert "expected_sha256" in text and "trusted_keys" in text
