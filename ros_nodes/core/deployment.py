"""Turn the policy node's parameters into a ready `ControlStep`: load + verify the bundle, check it against the
robot, build the safety chain. ROS-free, so configure-time refusals are unit-tested without a node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from robot_rl.export.errors import BundleError
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.safety import Arbiter, SafetyChain, SafetyConfig
from robot_rl.safety.config import manifest_safety_params
from robot_rl.safety.urdf_kinematics import load_forward_kinematics
from ros_nodes.core.control_step import ActionMapping, ControlStep, OnnxChunkPolicy
from ros_nodes.core.observations import ObservationAssembler, ObservationLayout
from ros_nodes.core.reward_hooks import RewardHooks

DEFAULT_CONTROLLERS = {
    "position": "position_controller",
    "velocity": "velocity_controller",
    "effort": "effort_controller",
}
"""Forward-command controller names a ros2_control robot conventionally runs for each interface."""


@dataclass(frozen=True)
class PolicyNodeConfig:
    """Parameters of the policy node (ROS parameters of the same names; safety limits under `safety.`)."""

    bundle_dir: str = ""
    """Directory of the exported bundle (manifest.json + policy.onnx)."""
    expected_sha256: str = ""
    """Pin the model: configure fails unless the ONNX file has this sha256 ("" = the manifest's own hash only)."""
    controller: str = ""
    """ros2_control controller to command; commands go to `/<controller>/commands` ("" = by interface)."""
    control_hz: float = 0.0
    """Control rate, Hz (0 = the bundle's rate)."""
    trigger: str = "timer"
    """"timer": tick on a deadline thread at control_hz; "joint_states": tick when a joint state arrives."""
    replan_every: int = 0
    """For action-chunked policies: steps executed from each chunk before re-planning (0 = whole chunk)."""
    reward_hooks: tuple[str, ...] = ("rlif", "success")
    """Reward hooks by entry-point name or `module:attr`."""
    human_timeout_s: float = 0.25
    """An operator command older than this no longer drives (the robot holds while the dead-man is held)."""
    publish_trajectory: bool = False
    """Also publish `trajectory_msgs/JointTrajectory` on `/<controller>/joint_trajectory` (position interface)."""
    record_dir: str = ""
    """Write one MCAP file per episode here ("" = do not record)."""
    episode_steps: int = 0
    """End (truncate) an episode after this many steps; 0 = only on `/robot_rl/episode_done`."""
    operator: str = ""
    """Who supervises this run (recorded in each episode's metadata)."""
    robot: str = ""
    """Robot name expected by this deployment ("" = do not check); must equal the bundle's robot."""
    urdf: str = ""
    """Robot URDF (file path or `pybullet_data:<path>`) for the safety chain's forward kinematics; needed for a
    workspace box (the box is in the URDF root link's frame)."""
    ee_link: str = ""
    """URDF link whose origin the workspace box must contain (with `urdf`)."""

    def __post_init__(self) -> None:
        if self.trigger not in ("timer", "joint_states"):
            raise ValueError(f"trigger must be 'timer' or 'joint_states', got {self.trigger!r}")
        if not (math.isfinite(self.control_hz) and self.control_hz >= 0):
            raise ValueError(f"control_hz must be >= 0 and finite, got {self.control_hz}")
        if not (math.isfinite(self.human_timeout_s) and self.human_timeout_s > 0):
            raise ValueError(f"human_timeout_s must be > 0, got {self.human_timeout_s}")
        if self.replan_every < 0 or self.episode_steps < 0:
            raise ValueError("replan_every and episode_steps must be >= 0")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PolicyNodeConfig:
        """Build from flat parameter values (unknown or `safety.*` keys are ignored here)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in params:
                value = params[f.name]
                kwargs[f.name] = tuple(str(v) for v in value) if f.name == "reward_hooks" else value
        return cls(**kwargs)


@dataclass
class Deployment:
    """Everything configure built; the node keeps it until cleanup."""

    config: PolicyNodeConfig
    """The node parameters it was built from."""
    policy: OnnxPolicy
    """The verified bundle."""
    step: ControlStep
    """The ROS-free control loop."""
    safety_config: SafetyConfig
    """Limits in force (read-only while active)."""
    controller: str
    """Resolved controller name."""
    control_hz: float
    """Resolved control rate, Hz."""
    robot: str
    """Robot name recorded in the bundle ("" if none)."""

    @property
    def command_topic(self) -> str:
        """Where commands go: `/<controller>/commands` (ros2_control forward command controllers)."""
        return f"/{self.controller}/commands"

    def episode_metadata(self) -> dict[str, str]:
        """What every recorded episode says about its provenance."""
        extra = self.policy.spec.extra
        return {
            "policy_sha256": self.policy.manifest.onnx_sha256,
            "policy_bundle": str(Path(self.config.bundle_dir).resolve()),
            "safety_config_sha256": self.safety_config.sha256(),
            "robot": self.robot,
            "env_id": str(extra.get("env_id", "")),
            "operator": self.config.operator,
            "control_hz": repr(self.control_hz),
            "command_interface": self.step.mapping.command_interface,
            "joints": ",".join(self.step.mapping.joints),
            "urdf": self.config.urdf,
            "ee_link": self.config.ee_link,
        }


def safety_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The `safety.*` parameters as a nested mapping (`safety.velocity_limit_rad_s` → `velocity_limit_rad_s`)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key.startswith("safety."):
            name = key[len("safety.") :]
            out[name] = tuple(value) if isinstance(value, list | tuple) else value
    return out


def _default_safety(
    mapping: ActionMapping, extra: Mapping[str, Any], control_hz: float, overrides: Mapping[str, Any]
) -> SafetyConfig:
    """Limits from the manifest (the URDF the policy was trained on), overridden by the node's YAML."""
    base = manifest_safety_params(extra, control_hz)
    merged = {**base, **{k: v for k, v in overrides.items() if v not in ("", None, [], ())}}
    missing = [k for k in ("position_lower_rad", "position_upper_rad", "velocity_limit_rad_s") if k not in merged]
    if missing:
        raise ValueError(
            f"safety limits {missing} are not in the bundle's manifest: give them in the node's "
            "parameter YAML under `safety:`"
        )
    if tuple(merged["joint_names"]) != mapping.joints:
        raise ValueError(
            f"safety.joint_names {list(merged['joint_names'])} differ from the bundle's commanded "
            f"joints {list(mapping.joints)} (same names in the same order are required)"
        )
    return SafetyConfig.from_dict(merged)


def build_deployment(params: Mapping[str, Any]) -> Deployment:
    """Load, verify and wire everything the node's `configure` needs.

    Raises:
        BundleError: missing/tampered bundle or pinned-hash mismatch.
        ValueError: the bundle does not fit this robot/deployment (joints, layout, limits, hooks), with the reason.
    """
    config = PolicyNodeConfig.from_params(params)
    if not config.bundle_dir:
        raise ValueError("parameter bundle_dir is empty: point it at an exported bundle directory")
    policy = OnnxPolicy.load(config.bundle_dir, expected_sha256=config.expected_sha256 or None)
    spec = policy.spec
    extra = spec.extra
    robot = str(extra.get("robot", ""))
    if config.robot and robot and config.robot != robot:
        raise BundleError(f"bundle was trained for robot {robot!r}, this deployment is for {config.robot!r}")
    mapping = ActionMapping.from_manifest_extra(extra, spec.action.names)
    if spec.action.names and tuple(spec.action.names) != mapping.joints:
        raise BundleError(
            f"bundle action names {list(spec.action.names)} differ from its action_interface joints "
            f"{list(mapping.joints)}"
        )
    layout = ObservationLayout.from_policy_extra(extra, policy.obs_dim)
    control_hz = float(config.control_hz or spec.control_hz)
    safety = _default_safety(mapping, extra, control_hz, safety_params(params))
    fk = None
    if safety.has_workspace:
        if not config.urdf:
            raise ValueError(
                f"the workspace box {safety.workspace_lower_m}..{safety.workspace_upper_m} m needs "
                "forward kinematics: set the parameters `urdf` (file path or pybullet_data:<path>) and `ee_link`"
            )
        fk = load_forward_kinematics(config.urdf, config.ee_link, mapping.joints)
    chain = SafetyChain(safety, fk)  # without a box, `urdf` is unused: the chain refuses FK it would not use
    step = ControlStep(
        OnnxChunkPolicy(policy, mapping),
        ObservationAssembler(layout),
        mapping,
        chain,
        arbiter=Arbiter(human_timeout_s=config.human_timeout_s),
        hooks=RewardHooks.from_specs(list(config.reward_hooks)),
        replan_every=config.replan_every,
    )
    controller = config.controller or DEFAULT_CONTROLLERS[mapping.command_interface]
    return Deployment(config, policy, step, safety, controller, control_hz, robot)
