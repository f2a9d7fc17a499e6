"""Turn the policy node's parameters into a ready `ControlStep`: load + verify the bundle, check it against the
robot, build the safety chain. ROS-free, so configure-time refusals are unit-tested without a node.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from robot_rl.core.robot import RobotInterface
from robot_rl.export.errors import BundleError
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.safety import Arbiter, SafetyConfig, build_chain
from robot_rl.safety.config import DEFAULT_LINKS, manifest_safety_params
from robot_rl.safety.registry import needs_kinematics
from robot_rl.safety.urdf_kinematics import load_urdf_chain
from ros_nodes.core.control_step import ChunkExecutionConfig, ControlStep, OnnxChunkPolicy
from ros_nodes.core.episode_session import EpisodeSession
from ros_nodes.core.lyapunov_deploy import wire_monitor
from ros_nodes.core.observations import ObservationAssembler, ObservationLayout
from ros_nodes.core.reward_hooks import RewardHooks

DEFAULT_CONTROLLERS = {
    "position": "position_controller",
    "velocity": "velocity_controller",
    "effort": "effort_controller",
}
"""Forward-command controller names a ros2_control robot conventionally runs for each interface."""

ROS_BUILTIN_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})
"""Parameters every rclpy node declares itself; they are not the policy node's to check."""
ROS_BUILTIN_PREFIXES = ("qos_overrides.",)
"""Prefixes of parameters rclpy declares itself (QoS overrides of publishers and subscriptions)."""
SAFETY_PREFIX = "safety."
"""The safety chain's parameters (`SafetyConfig` fields; unknown ones are refused by `SafetyConfig.from_dict`)."""


@dataclass(frozen=True)
class PolicyNodeConfig:
    """Parameters of the policy node (ROS parameters of the same names; safety limits under `safety.`)."""

    bundle_dir: str = ""
    """Directory of the exported bundle (manifest.json + policy.onnx)."""
    expected_sha256: str = ""
    """Pin the model: configure fails unless the ONNX file has this sha256 ("" = unpinned: the manifest's own
    hash only, which a swapped and re-hashed bundle also satisfies; warned and reported on /diagnostics).
    `robot-rl deploy` sets it to the hash it verified."""
    trusted_keys: tuple[str, ...] = ()
    """Public-key PEM files (`robot-rl sign --generate-key`); when set, configure refuses a bundle whose
    manifest.json is not signed by one of them (() = signatures not required)."""
    controller: str = ""
    """ros2_control controller to command; commands go to `/<controller>/commands` ("" = by interface)."""
    control_hz: float = 0.0
    """Control rate, Hz (0 = the bundle's rate)."""
    trigger: str = "timer"
    """"timer": tick on a deadline thread at control_hz; "joint_states": tick when a joint state arrives."""
    replan_every: int = 0
    """For action-chunked policies: steps executed from each chunk before the next is due (0 = the bundle's
    execution horizon H_a, or the whole chunk when that is 0)."""
    chunk_execution: str = "receding"
    """Action-chunked policies: "receding" (execute H_a actions of each chunk, then the next chunk) or "ensemble"
    (ACT temporal ensembling: plan every step, execute the weighted average of every prediction for the step)."""
    ensemble_decay: float = 0.01
    """Temporal ensembling: m in the weights exp(-m·i), i = 0 for the oldest prediction."""
    async_inference: bool = True
    """Action-chunked policies (chunk_size > 1): plan the next chunk on a worker thread before the current one runs
    out, so a sampler slower than the control period never costs a tick. Chunk-size-1 bundles always plan on the
    tick."""
    plan_lead_steps: int = 0
    """Asynchronous receding horizon: start the next plan when this many actions of the current chunk are left
    (0 = from the measured planning latency plus one period)."""
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
    robot_resets_on_done: bool = False
    """The robot re-initializes itself, at rest, when it ends an episode (the simulated robot with
    `reset_on_done`): the safety chain re-anchors at the new episode's first plausible reading. Never on a real
    robot: there rate limits stay relative to the last command sent, across every roll-over."""
    operator: str = ""
    """Who supervises this run (recorded in each episode's metadata)."""
    robot: str = ""
    """Robot name expected by this deployment ("" = do not check); must equal the bundle's robot."""
    urdf: str = ""
    """Robot URDF (file path or `pybullet_data:<path>`) for the safety chain's forward kinematics; needed for a
    workspace box (the box is in the URDF root link's frame)."""
    ee_link: str = ""
    """URDF link whose origin the workspace box must contain (with `urdf`)."""
    stats_path: str = ""
    """Write the loop summary (timing, safety counters, interventions) here as JSON on deactivate ("" = don't)."""
    step_stream_topic: str = ""
    """Stream every executed step to a learner on this `std_msgs/UInt8MultiArray` topic (`robot_rl.hil.wire`
    messages: the recorder's steps, numbered, stamped with the node run and the bundle that produced them;
    published off the control thread; "" = off)."""
    bundle_announce_topic: str = ""
    """Hot swap (docs/deploy.md): a latched `std_msgs/String` topic on which a learner announces new bundles
    (`robot_rl.hil.announcement.BundleAnnouncement` JSON); each is verified off the control thread and adopted at
    the next episode start ("" = hot swap off)."""
    learner_status_topic: str = ""
    """Hot swap: the learner's heartbeat (`std_msgs/String` JSON, liveliness lease 1 s); `/diagnostics`
    (`policy_node/learner`) turns WARN within about 2 s of the learner dying or hanging ("" = not watched)."""
    swap_window_episodes: int = 20
    """Hot swap: a bundle's success rate is taken over its last this-many episodes (`BundleSwapConfig`)."""
    swap_min_episodes: int = 5
    """Hot swap: episodes each bundle must have run before an automatic rollback is judged."""
    swap_rollback_margin: float = 0.2
    """Hot swap: roll back when the new bundle's success rate is below the previous one's by more than this."""
    swap_verify_timeout_s: float = 60.0
    """Hot swap: an announced bundle whose verification takes longer is refused, s."""
    swap_readopt_rolled_back: bool = False
    """Hot swap: adopt a rolled-back bundle again when it is announced again."""
    swap_accept_unsigned_when_pinned: bool = False
    """Hot swap: a deployment pinned by `expected_sha256` without `trusted_keys` accepts announced bundles, then
    authenticated only by the announcement's sha256 (False: refused; sign the learner's bundles instead)."""

    def __post_init__(self) -> None:
        if self.trigger not in ("timer", "joint_states"):
            raise ValueError(f"trigger must be 'timer' or 'joint_states', got {self.trigger!r}")
        if not (math.isfinite(self.control_hz) and self.control_hz >= 0):
            raise ValueError(f"control_hz must be >= 0 and finite, got {self.control_hz}")
        if not (math.isfinite(self.human_timeout_s) and self.human_timeout_s > 0):
            raise ValueError(f"human_timeout_s must be > 0, got {self.human_timeout_s}")
        if self.replan_every < 0 or self.episode_steps < 0 or self.plan_lead_steps < 0:
            raise ValueError("replan_every, episode_steps and plan_lead_steps must be >= 0")
        self.chunk_execution_config()  # refuses an unknown mode or a bad decay at configure
        pin = self.expected_sha256.strip().lower()
        if pin and (len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin)):
            raise ValueError(
                f"expected_sha256 must be 64 hex digits (or '' for unpinned), got {self.expected_sha256!r}"
            )

    def chunk_execution_config(self) -> ChunkExecutionConfig:
        """How the control step executes and plans chunks.

        Raises:
            ValueError: unknown `chunk_execution` or a bad `ensemble_decay`.
        """
        return ChunkExecutionConfig(
            mode=self.chunk_execution,
            async_inference=self.async_inference,
            ensemble_decay=float(self.ensemble_decay),
            lead_steps=self.plan_lead_steps,
        )

    @classmethod
    def parameter_defaults(cls) -> dict[str, Any]:
        """Every node parameter with its default, as ROS parameter values (lists, not tuples)."""
        defaults = cls()
        out: dict[str, Any] = {}
        for f in fields(cls):
            value = getattr(defaults, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PolicyNodeConfig:
        """Build from flat parameter values; `safety.*` keys are the safety chain's and rclpy's own are skipped.

        Raises:
            ValueError: an unknown parameter (a typo would otherwise be silently ignored), listing the valid ones.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(k for k in params if k not in names and not _not_ours(k))
        if unknown:
            raise ValueError(
                f"unknown policy_node parameter(s) {unknown}; valid parameters are {sorted(names)} and "
                f"{SAFETY_PREFIX}<field> (robot_rl.safety.SafetyConfig)"
            )
        kwargs: dict[str, Any] = {}
        for name in names & set(params):
            value = params[name]
            if name == "trusted_keys" and isinstance(value, str):  # one key given as a plain string
                value = [value] if value else []
            kwargs[name] = tuple(str(v) for v in value) if name in ("reward_hooks", "trusted_keys") else value
        return cls(**kwargs)


def _not_ours(key: str) -> bool:
    """Parameters checked elsewhere (`safety.*`) or declared by rclpy itself."""
    return key.startswith((SAFETY_PREFIX, *ROS_BUILTIN_PREFIXES)) or key in ROS_BUILTIN_PARAMETERS


@dataclass
class Deployment:
    """Everything configure built; the node keeps it until cleanup."""

    config: PolicyNodeConfig
    """The node parameters it was built from."""
    policy: OnnxPolicy
    """The verified bundle."""
    step: ControlStep
    """The ROS-free control loop."""
    session: EpisodeSession
    """Episode bookkeeping around `step` (ends, roll-over, end flags, intervention counts)."""
    safety_config: SafetyConfig
    """Limits in force (read-only while active)."""
    controller: str
    """Resolved controller name."""
    control_hz: float
    """Resolved control rate, Hz."""
    robot: RobotInterface
    """The bundle's typed robot interface (what its observations and actions mean on the robot)."""
    fallback: OnnxPolicy | None = None
    """The verified bundle the `lyapunov` monitor falls back to (`on_violation: fallback`), or None."""

    @property
    def command_topic(self) -> str:
        """Where commands go: `/<controller>/commands` (ros2_control forward command controllers)."""
        return f"/{self.controller}/commands"

    @property
    def pinned(self) -> bool:
        """Whether configure checked the model against an `expected_sha256` pin."""
        return bool(self.config.expected_sha256.strip())

    def trust_status(self) -> tuple[bool, str]:
        """(ok, message) for /diagnostics: how this bundle was authenticated; not ok when it is unpinned."""
        sha = self.policy.manifest.onnx_sha256
        signed = f"signed by key {self.policy.signer_key_id}" if self.policy.signer_key_id else "signature not checked"
        if not self.pinned:
            return False, (
                f"unpinned: expected_sha256 is not set, so any bundle consistent with its own manifest is accepted "
                f"(loaded sha256 {sha[:12]}; {signed})"
            )
        return True, f"pinned sha256 {sha[:12]}; {signed}"

    def episode_metadata(self) -> dict[str, str]:
        """What every recorded episode says about its provenance."""
        return {
            "policy_sha256": self.policy.manifest.onnx_sha256,
            "policy_bundle": str(Path(self.config.bundle_dir).resolve()),
            "safety_config_sha256": self.safety_config.sha256(),
            "robot": self.robot.robot,
            "env_id": self.policy.spec.env_id,
            "operator": self.config.operator,
            "control_hz": repr(self.control_hz),
            "command_interface": self.robot.command.ros2_control,
            "joints": ",".join(self.robot.command.joints),
            "urdf": self.config.urdf,
            "ee_link": self.config.ee_link,
            # The typed contract itself, so a recording says what its actions mean wherever it is read
            # (`robot-rl dataset mcap` on a workstation that has no copy of the bundle).
            "policy_spec": json.dumps(self.policy.spec.to_json(), sort_keys=True),
        }


def safety_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The `safety.*` parameters as a nested mapping (`safety.velocity_limit_rad_s` → `velocity_limit_rad_s`)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key.startswith(SAFETY_PREFIX):
            name = key[len(SAFETY_PREFIX) :]
            out[name] = tuple(value) if isinstance(value, list | tuple) else value
    return out


def _default_safety(robot: RobotInterface, control_hz: float, overrides: Mapping[str, Any]) -> SafetyConfig:
    """Limits from the manifest (the URDF the policy was trained on), overridden by the node's YAML."""
    base = manifest_safety_params(robot, control_hz)
    joints = robot.command.joints
    merged = {**base, **{k: v for k, v in overrides.items() if v not in ("", None, [], ())}}
    missing = [k for k in ("position_lower_rad", "position_upper_rad", "velocity_limit_rad_s") if k not in merged]
    if missing:
        raise ValueError(
            f"safety limits {missing} are not in the bundle's manifest: give them in the node's "
            "parameter YAML under `safety:`"
        )
    if tuple(merged["joint_names"]) != joints:
        raise ValueError(
            f"safety.joint_names {list(merged['joint_names'])} differ from the bundle's commanded "
            f"joints {list(joints)} (same names in the same order are required)"
        )
    return SafetyConfig.from_dict(merged)


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle loaded, verified and checked against the node's parameters: what configure needs of it."""

    policy: OnnxPolicy
    """The verified bundle."""
    robot: RobotInterface
    """Its typed robot interface (never None: a bundle without one is refused)."""
    layout: ObservationLayout
    """Where each entry of its flat observation comes from."""
    control_hz: float
    """Control rate in force, Hz (the node's `control_hz`, or the bundle's)."""
    safety: SafetyConfig
    """Limits from its manifest, overridden by the node's `safety.*` parameters."""


def check_bundle(
    bundle_dir: str,
    config: PolicyNodeConfig,
    safety_overrides: Mapping[str, Any],
    *,
    expected_sha256: str | None = None,
    control_hz: float = 0.0,
) -> CheckedBundle:
    """Load and verify the bundle in `bundle_dir` (hash, `expected_sha256` pin, signature by `config.trusted_keys`)
    and check it against the deployment's parameters: a robot interface, `config.robot`, action names equal to the
    commanded joints, an observation layout the node can assemble, and safety limits (manifest + overrides) that
    name the commanded joints. Configure runs it on `bundle_dir`; a hot swap (`ros_nodes/core/bundle_swap.py`) on
    each announced bundle.

    Args:
        safety_overrides: the node's `safety.*` parameters (`safety_params`).
        control_hz: the rate in force, Hz (0 = `config.control_hz`, or the bundle's when that is 0 too).

    Raises:
        BundleError: missing/tampered bundle, pinned-hash mismatch, missing/untrusted signature, no robot
            interface, another robot, action names that are not the commanded joints.
        ValueError: the observation layout or the safety limits do not fit (the reason).
    """
    policy = OnnxPolicy.load(bundle_dir, expected_sha256=expected_sha256, trusted_keys=config.trusted_keys or None)
    spec = policy.spec
    robot = spec.robot
    if robot is None:
        raise BundleError(
            f"bundle {bundle_dir} has no robot interface (policy_spec.robot): it was trained on "
            f"{spec.env_id or 'a plain Gymnasium env'!r}, not a robot_rl/* robot env, so nothing says which "
            "joints, topics and command interface its inputs and outputs are; export a policy trained on a robot env"
        )
    if config.robot and robot.robot and config.robot != robot.robot:
        raise BundleError(f"bundle was trained for robot {robot.robot!r}, this deployment is for {config.robot!r}")
    command = robot.command
    if spec.action.names and tuple(spec.action.names) != command.joints:
        raise BundleError(
            f"bundle action names {list(spec.action.names)} differ from its command interface joints "
            f"{list(command.joints)}"
        )
    layout = ObservationLayout.from_robot(robot, policy.obs_dim)
    hz = float(control_hz or config.control_hz or spec.control_hz)
    safety = _default_safety(robot, hz, safety_overrides)
    return CheckedBundle(policy, robot, layout, hz, safety)


def build_deployment(params: Mapping[str, Any]) -> Deployment:
    """Load, verify and wire everything the node's `configure` needs.

    Raises:
        BundleError: missing/tampered bundle or pinned-hash mismatch.
        ValueError: the bundle does not fit this robot/deployment (joints, layout, limits, hooks), with the reason.
    """
    config = PolicyNodeConfig.from_params(params)
    if not config.bundle_dir:
        raise ValueError("parameter bundle_dir is empty: point it at an exported bundle directory")
    checked = check_bundle(
        config.bundle_dir, config, safety_params(params), expected_sha256=config.expected_sha256.strip() or None
    )
    policy, robot, control_hz, safety = checked.policy, checked.robot, checked.control_hz, checked.safety
    command = robot.command
    fk = None
    if needs_kinematics(safety):  # a workspace box, or a link such as cbf that reads control-point Jacobians
        if not config.urdf:
            what = (
                f"the workspace box {safety.workspace_lower_m}..{safety.workspace_upper_m} m"
                if safety.has_workspace
                else f"the safety chain (links {[n for n in safety.links if n not in DEFAULT_LINKS]})"
            )
            raise ValueError(
                f"{what} needs forward kinematics: set the parameters `urdf` (file path or "
                "pybullet_data:<path>) and `ee_link`"
            )
        fk = load_urdf_chain(config.urdf, config.ee_link, command.joints)
    chain = build_chain(safety, fk)  # without a user, `urdf` is unused: the chain refuses FK it would not use
    # The `lyapunov` monitor link: the bundle's critic, and a fallback bundle verified like this one.
    monitor = wire_monitor(policy, safety, config.bundle_dir, config.trusted_keys)
    step = ControlStep(
        OnnxChunkPolicy(policy),
        ObservationAssembler(checked.layout),
        command,
        chain,
        arbiter=Arbiter(human_timeout_s=config.human_timeout_s),
        hooks=RewardHooks.from_specs(list(config.reward_hooks)),
        replan_every=config.replan_every,
        execution=config.chunk_execution_config(),
        period_s=1.0 / control_hz,
        lyapunov=monitor.lyapunov,
        fallback_policy=monitor.fallback_policy,
    )
    controller = config.controller or DEFAULT_CONTROLLERS[command.ros2_control]
    session = EpisodeSession(step, max_steps=config.episode_steps, robot_resets_on_done=config.robot_resets_on_done)
    return Deployment(config, policy, step, session, safety, controller, control_hz, robot, monitor.fallback)
