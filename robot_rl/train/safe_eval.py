"""Evaluate a bundle in simulation behind the same safety chain the ROS policy node runs.

The policy's physical command is filtered by `robot_rl.safety.SafetyChain` (measured joint positions read from
the observation by the bundle's typed robot interface, the sim clock as the chain's clock) and executed by the env
(made with its physical action space, like every bundle evaluation). The chain's counters and the commands it let
through are kept, so a sim evaluation shows how often the filter acts and whether any executed command broke a
limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from robot_rl.core.robot import RobotInterface
from robot_rl.safety import SafetyChain, SafetyConfig, build_chain
from robot_rl.safety.config import manifest_safety_params
from robot_rl.safety.registry import link_factory, needs_kinematics
from robot_rl.safety.urdf_kinematics import UrdfChain, load_urdf_chain


def default_safety_config(robot: RobotInterface | None, control_hz: float) -> SafetyConfig:
    """Limits recorded in a robot_rl/* bundle's manifest (what the policy node uses when its YAML gives none)."""
    params = manifest_safety_params(robot, control_hz)
    if "position_lower_rad" not in params:
        raise ValueError("the bundle's manifest records no joint_limits: pass a safety YAML")
    return SafetyConfig.from_dict(params)


def load_safety_config(source: str, robot: RobotInterface | None, control_hz: float) -> SafetyConfig:
    """`manifest` → the bundle's recorded limits; otherwise a ROS parameter YAML (`/**/policy_node: ... safety:`)."""
    base = default_safety_config(robot, control_hz)
    if source == "manifest":
        return base
    # Like the policy node: what the YAML leaves out (interface, period, ...) comes from the bundle.
    return SafetyConfig.from_yaml(Path(source), defaults=base.to_json())


@dataclass
class SafeActor:
    """`act(obs) -> physical command` through the safety chain; one instance per evaluation (it keeps state)."""

    act_fn: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
    """The policy: observation → physical command (what `OnnxPolicy.act` returns)."""
    chain: SafetyChain
    """The chain the policy node would run."""
    joint_pos_index: npt.NDArray[np.intp]
    """Observation indices of the commanded joints' positions (command order)."""
    control_period_s: float
    """Sim time per step."""
    executed: list[list[npt.NDArray[np.float64]]] = field(default_factory=list)
    """Executed physical commands per episode, in order (for checking them against the limits)."""
    measured: list[list[npt.NDArray[np.float64]]] = field(default_factory=list)
    """Measured positions of the commanded joints per episode, one per executed command (rad or m)."""
    steps: int = 0
    """Steps taken since the last `reset`."""

    def reset(self, obs: npt.NDArray[np.float32]) -> None:
        """New episode: the chain re-arms at the measured position."""
        self.steps = 0
        self.executed.append([])
        self.measured.append([])
        # Each episode is a fresh env.reset (moved and stopped): re-anchor there, unlike a roll-over on a robot.
        self.chain.reset(np.asarray(obs, np.float64)[self.joint_pos_index], reanchor=True)

    def __call__(self, obs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        now = self.steps * self.control_period_s
        self.steps += 1
        physical = np.asarray(self.act_fn(obs), np.float64)
        q = np.asarray(obs, np.float64)[self.joint_pos_index]
        res = self.chain.filter(
            physical, now_s=now, joint_pos_rad=q, joint_vel_rad_s=None, observation_stamp_s=now, command_stamp_s=now
        )
        if not self.executed:
            self.executed.append([])
            self.measured.append([])
        self.executed[-1].append(res.action.copy())
        self.measured[-1].append(q)
        return res.action.astype(np.float32)


def safe_actor(
    act_fn: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]],
    robot: RobotInterface | None,
    config: SafetyConfig,
) -> SafeActor:
    """Wire a policy to a chain using the bundle's typed robot interface (observation layout, commanded joints)."""
    if robot is None:
        raise ValueError("the bundle has no robot interface: `eval --safety` needs a policy trained on a robot env")
    joints = robot.command.joints
    if config.joint_names != joints:
        raise ValueError(f"safety joint_names {list(config.joint_names)} differ from the bundle's {list(joints)}")
    try:
        joint_pos_index = robot.commanded_joint_pos_index()
    except KeyError as exc:
        raise ValueError(f"the chain needs measured joint positions: {exc}") from None
    return SafeActor(
        act_fn=act_fn,
        chain=build_chain(config, chain_kinematics(robot, config)),
        joint_pos_index=joint_pos_index,
        control_period_s=config.control_period_s,
    )


def chain_kinematics(robot: RobotInterface, config: SafetyConfig) -> UrdfChain | None:
    """The `UrdfChain` the policy node would load for this config (None when no link needs one: no box, no cbf).

    Like the node's `urdf` / `ee_link` parameters, the robot description and end-effector link come from the
    bundle's robot interface (the sim robot's URDF).

    Raises:
        ValueError: kinematics needed, but the bundle names no URDF or end-effector link, or they do not load.
    """
    if not needs_kinematics(config):
        return None
    if not robot.urdf or not robot.ee_link:
        raise ValueError(
            f"the safety chain's {_kinematics_users(config)} needs forward kinematics, but the bundle's robot "
            f"interface names no URDF ({robot.urdf!r}) or end-effector link ({robot.ee_link!r})"
        )
    return load_urdf_chain(robot.urdf, robot.ee_link, config.joint_names)


def _kinematics_users(config: SafetyConfig) -> str:
    """What needs kinematics, for messages: the workspace box and/or the links that declare it."""
    users = [f"workspace box {config.workspace_lower_m}..{config.workspace_upper_m} m"] if config.has_workspace else []
    users += [
        f"'{n}' link" for n in config.links if n != "workspace" and getattr(link_factory(n), "needs_kinematics", False)
    ]
    return " and ".join(users)


VIOLATION_KEYS = ("position", "velocity", "acceleration", "effort")
"""Limits `limit_violations` counts (steps whose executed command broke at least one joint's limit)."""

_REL_TOL = 1e-9
"""Relative slack for floating-point rounding in the recomputed rates (the chain's own output rounds too)."""


def limit_violations(
    episodes: list[list[npt.NDArray[np.float64]]],
    config: SafetyConfig,
    dt_s: float,
    measured: list[list[npt.NDArray[np.float64]]] | None = None,
) -> dict[str, int]:
    """Steps whose executed command broke a limit of the config's interface (S5's metric).

    - position targets: outside the (margined) position limits; implied velocity Δq/dt beyond v_max; implied
      acceleration beyond a_max (a target equal to the previous one is a stop, exempt as the chain's holds are).
      Each episode starts at rest at its first measured position when `measured` is given, else at its first
      target (whose own rates are then not checked).
    - velocity commands: |v| beyond v_max; |Δv|/dt beyond a_max (all-zero stops exempt); with `measured`, a
      command that would carry a joint inside its limits beyond them within one period (q + v·dt).
    - effort commands: |τ| beyond the effort limit; with `measured`, effort pushing a joint that is at or beyond a
      position limit further out.

    Args:
        episodes: executed commands per episode, each [n] in config order.
        config: the limits.
        dt_s: time between commands, s.
        measured: measured joint positions per episode, aligned with `episodes` (rad or m); optional.

    Returns:
        counts per key of `VIOLATION_KEYS` plus "steps" (commands checked).
    """
    out = dict.fromkeys(VIOLATION_KEYS, 0) | {"steps": 0}
    m = config.position_margin_rad
    lo = np.asarray(config.position_lower_rad) + m
    hi = np.asarray(config.position_upper_rad) - m
    vmax = np.asarray(config.velocity_limit_rad_s)
    amax = np.asarray(config.acceleration_limit_rad_s2)
    iface = config.command_interface

    def count(key: str, bad: npt.NDArray[np.bool_]) -> None:
        out[key] += int(np.count_nonzero(bad))

    for k, commands in enumerate(episodes):
        if not commands:
            continue
        u = np.asarray(commands, np.float64)
        q = np.asarray(measured[k], np.float64) if measured is not None else None
        out["steps"] += len(u)
        slack = 1.0 + _REL_TOL
        if iface == "position":
            count("position", np.any((u < lo - _REL_TOL) | (u > hi + _REL_TOL), axis=1))
            start = np.clip(q[0], lo, hi) if q is not None else u[0]
            path = np.vstack([start, u])
            v = np.diff(path, axis=0) / dt_s
            if q is None:
                v = v[1:]  # the first target's rate has no known start
            count("velocity", np.any(np.abs(v) > vmax * slack + _REL_TOL, axis=1))
            v_before = np.vstack([np.zeros_like(v[:1]), v[:-1]])  # at rest when the episode starts
            moving = np.any(v != 0.0, axis=1)
            jerk = np.abs(v - v_before) > amax * dt_s * slack + 1e-6
            count("acceleration", np.any(jerk, axis=1) & moving)
        elif iface == "velocity":
            count("velocity", np.any(np.abs(u) > vmax * slack, axis=1))
            v_before = np.vstack([np.zeros_like(u[:1]), u[:-1]])
            moving = np.any(u != 0.0, axis=1)
            count("acceleration", np.any(np.abs(u - v_before) > amax * dt_s * slack + 1e-9, axis=1) & moving)
            if q is not None:
                inside = (q >= lo) & (q <= hi)
                pred = q + u * dt_s
                count("position", np.any(inside & ((pred > hi + _REL_TOL) | (pred < lo - _REL_TOL)), axis=1))
        else:
            emax = np.asarray(config.effort_limit)
            count("effort", np.any(np.abs(u) > emax * slack, axis=1))
            if q is not None:
                outward = ((q >= hi) & (u > 0.0)) | ((q <= lo) & (u < 0.0))
                count("position", np.any(outward, axis=1))
    return out
