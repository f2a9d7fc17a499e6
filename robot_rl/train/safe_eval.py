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
from robot_rl.safety import SafetyChain, SafetyConfig
from robot_rl.safety.config import manifest_safety_params


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
    steps: int = 0
    """Steps taken since the last `reset`."""

    def reset(self, obs: npt.NDArray[np.float32]) -> None:
        """New episode: the chain re-arms at the measured position."""
        self.steps = 0
        self.executed.append([])
        self.chain.reset(np.asarray(obs, np.float64)[self.joint_pos_index])

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
        self.executed[-1].append(res.action.copy())
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
        chain=SafetyChain(config),
        joint_pos_index=joint_pos_index,
        control_period_s=config.control_period_s,
    )


def limit_violations(
    episodes: list[list[npt.NDArray[np.float64]]], config: SafetyConfig, dt_s: float
) -> dict[str, int]:
    """Executed commands beyond the velocity/acceleration limits (velocity interface): S5's metric, per step."""
    out = {"velocity": 0, "acceleration": 0, "steps": 0}
    if config.command_interface != "velocity":
        return out
    vmax = np.asarray(config.velocity_limit_rad_s)
    amax = np.asarray(config.acceleration_limit_rad_s2)
    for commands in episodes:
        if not commands:
            continue
        # the chain's state starts at rest: the first command is a change from zero velocity
        u = np.vstack([np.zeros_like(commands[0]), np.asarray(commands)])
        accel = np.abs(np.diff(u, axis=0)) / dt_s
        stopping = np.all(u[1:] == 0.0, axis=1)  # a stop may brake harder than a_max: holds are exempt by design
        out["velocity"] += int(np.sum(np.any(np.abs(u[1:]) > vmax * (1 + 1e-9), axis=1)))
        out["acceleration"] += int(np.sum(np.any(accel > amax * (1 + 1e-6), axis=1) & ~stopping))
        out["steps"] += len(commands)
    return out
