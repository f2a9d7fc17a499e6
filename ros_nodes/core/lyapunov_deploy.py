"""Wire the safety chain's `lyapunov` monitor link at configure time: the bundle's critic, and the fallback bundle.

The monitor (`robot_rl.safety.links.lyapunov`) judges `L(s_t, π(s_t))` along the real trajectory, so a chain that
lists it needs a bundle exported with its Lyapunov critic (`manifest.lyapunov`, a LAC run). With
`on_violation: fallback` the control loop switches to `lyapunov.fallback_bundle`, which is loaded and verified like
the main bundle (hash against its manifest, signature when the node pins trusted keys) and must drive the same
robot the same way: same robot, measured joints, observation layout, commanded joints and interface, chunk size
and observation history. ROS-free: the refusals are unit-tested without a node.
"""

from __future__ import annotations

from dataclasses import dataclass

from robot_rl.export.errors import BundleError
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.safety import SafetyConfig
from robot_rl.safety.links.lyapunov import LyapunovMonitorConfig
from ros_nodes.core.control_step import LyapunovFn, OnnxChunkPolicy
from ros_nodes.core.observations import ObservationLayout

MONITOR_LINK = "lyapunov"
"""The monitor link's name in `safety.links`."""
NEEDS_CRITIC = "the safety chain's 'lyapunov' monitor needs a bundle exported with its Lyapunov critic (a LAC run)"


@dataclass(frozen=True)
class MonitorWiring:
    """What `ControlStep` needs for the `lyapunov` link (all None when the chain does not list it)."""

    lyapunov: LyapunovFn | None = None
    """The main bundle's critic, `OnnxPolicy.lyapunov_value`."""
    fallback_policy: OnnxChunkPolicy | None = None
    """The verified fallback bundle as a chunk policy (`on_violation: fallback` only)."""
    fallback: OnnxPolicy | None = None
    """The verified fallback bundle itself (for diagnostics and provenance)."""


def wire_monitor(
    policy: OnnxPolicy, safety: SafetyConfig, bundle_dir: str, trusted_keys: tuple[str, ...] = ()
) -> MonitorWiring:
    """The monitor's critic and fallback for `policy` (loaded from `bundle_dir`) under `safety`.

    Raises:
        BundleError: the bundle carries no critic, or the fallback bundle is refused or does not fit (the reason).
        ValueError: a bad monitor parameter (named).
    """
    if MONITOR_LINK not in safety.links:
        return MonitorWiring()
    if not policy.has_lyapunov:
        raise BundleError(f"{NEEDS_CRITIC}; bundle {bundle_dir} has no manifest lyapunov field")
    monitor = LyapunovMonitorConfig.from_params(safety.params_of(MONITOR_LINK))
    if monitor.on_violation != "fallback":
        return MonitorWiring(lyapunov=policy.lyapunov_value)
    where = f"lyapunov.fallback_bundle {monitor.fallback_bundle}"
    try:
        fallback = OnnxPolicy.load(monitor.fallback_bundle, trusted_keys=trusted_keys or None)
    except BundleError as exc:
        raise BundleError(f"{where} was refused: {exc}") from exc
    problem = _misfit(policy, fallback)
    if problem:
        raise BundleError(f"{where} does not fit the deployed bundle {bundle_dir}: {problem}")
    return MonitorWiring(lyapunov=policy.lyapunov_value, fallback_policy=OnnxChunkPolicy(fallback), fallback=fallback)


def _misfit(main: OnnxPolicy, fallback: OnnxPolicy) -> str:
    """Why `fallback` cannot drive the robot `main` is deployed on, or ""."""
    ours, theirs = main.spec.robot, fallback.spec.robot
    if ours is None or theirs is None:
        return "it has no robot interface (policy_spec.robot)"
    if theirs.robot != ours.robot:
        return f"it was trained for robot {theirs.robot!r}, the deployed bundle for {ours.robot!r}"
    if theirs.command.joints != ours.command.joints:
        return f"it commands joints {list(theirs.command.joints)}, the deployed bundle {list(ours.command.joints)}"
    if (theirs.command.type, theirs.command.ros2_control) != (ours.command.type, ours.command.ros2_control):
        return f"it commands {theirs.command.type!r}, the deployed bundle {ours.command.type!r}"
    if fallback.spec.action.names and tuple(fallback.spec.action.names) != theirs.command.joints:
        return f"its action names {list(fallback.spec.action.names)} differ from its commanded joints"
    try:
        layout = ObservationLayout.from_robot(theirs, fallback.obs_dim)
    except ValueError as exc:
        return str(exc)
    main_layout = ObservationLayout.from_robot(ours, main.obs_dim)
    if layout != main_layout:
        return f"its observation layout {layout} differs from the deployed bundle's {main_layout}"
    for name in ("chunk_size", "obs_history"):
        a, b = getattr(fallback.spec, name), getattr(main.spec, name)
        if a != b:
            return f"its {name} is {a}, the deployed bundle's {b}"
    return ""
