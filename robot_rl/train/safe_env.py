"""Safe exploration: a training env whose every action goes through the safety chain the robot will run.

The learner's normalized action is mapped to the physical command, filtered by the same `SafetyChain` the policy
node and `eval --safety` build (`build_chain`, so a CBF link in the YAML shapes exploration too), and the filtered
command is what the simulator executes. The filter is part of the environment from the learner's point of view: the
replay keeps the learner's own action (so its critic learns what its actions lead to behind the filter), and every
step's `info` says what the chain did:

- `info["safety_held"]`: the chain held (the robot stayed put this step);
- `info["safety_changed_by"]`: the counter keys of the links that changed the command (e.g. `("cbf",)`);
- `info["safety_correction"]`: ‖executed − proposed‖ in normalized action units (0 when unchanged).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from robot_rl.core.robot import RobotInterface
from robot_rl.safety import SafetyChain, SafetyConfig, build_chain
from robot_rl.train.envs import robot_interface_of
from robot_rl.train.safe_eval import chain_kinematics, load_safety_config


class SafetyFilteredEnv(gym.Wrapper[Any, Any, Any, Any]):
    """A robot_rl/* suite env behind a safety chain (normalized actions in and out, like the env itself)."""

    def __init__(self, env: gym.Env[Any, Any], config: SafetyConfig, robot: RobotInterface) -> None:
        """Args:
        env: a suite env (normalized actions).
        config: the chain's limits and links (e.g. `load_safety_config(yaml, robot, hz)`).
        robot: the env's robot interface (observation layout, command interface, URDF for the links' kinematics).

        Raises:
            ValueError: the config's joints are not the env's commanded joints, or a link cannot be built.
        """
        super().__init__(env)
        if config.joint_names != robot.command.joints:
            raise ValueError(
                f"safety joint_names {list(config.joint_names)} differ from the env's {robot.command.joints}"
            )
        self.robot = robot
        self.chain: SafetyChain = build_chain(config, chain_kinematics(robot, config))
        """The chain every action goes through (its counters are the run's safety activations)."""
        self._q_index = robot.commanded_joint_pos_index()
        self._period_s = config.control_period_s
        self._obs: npt.NDArray[np.float64] | None = None
        self._t = 0
        self.steps = 0
        """Steps taken since construction."""
        self.held = 0
        """Steps the chain held."""
        self.changed = 0
        """Steps a link changed the command (held steps not included)."""
        self.episodes = 0
        """Episodes finished (terminated or truncated)."""
        self.terminated = 0
        """Episodes that ended `terminated` without success: a terminal failure (a collision, a fall), the
        constraint violations safe exploration is meant to avoid."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs, self._t = np.asarray(obs, np.float64), 0
        # Each episode starts from a fresh env.reset (moved and stopped): re-anchor the rate limits there.
        self.chain.reset(self._obs[self._q_index], reanchor=True)
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        if self._obs is None:
            raise RuntimeError("step() before reset()")
        proposed = np.asarray(action, np.float64)
        now = self._t * self._period_s
        res = self.chain.filter(
            self.robot.command.to_physical(proposed), now_s=now, joint_pos_rad=self._obs[self._q_index],
            joint_vel_rad_s=None, observation_stamp_s=now, command_stamp_s=now,
        )  # fmt: skip
        executed = self.robot.command.to_normalized(res.action, clip=True)
        obs, reward, terminated, truncated, info = self.env.step(executed.astype(np.float32))
        self._obs, self._t = np.asarray(obs, np.float64), self._t + 1
        self.steps += 1
        self.held += int(res.held)
        self.changed += int(bool(res.changed_by) and not res.held)
        if terminated or truncated:
            self.episodes += 1
            self.terminated += int(bool(terminated) and not info.get("is_success", False))
        info = dict(info)
        info["safety_held"] = bool(res.held)
        info["safety_changed_by"] = tuple(res.changed_by)
        info["safety_correction"] = float(np.linalg.norm(executed - np.clip(proposed, -1.0, 1.0)))
        return obs, reward, terminated, truncated, info

    def summary(self) -> dict[str, Any]:
        """Steps, held and changed steps, and the chain's counters (what `<run>/safety.json` holds)."""
        return {
            "steps": self.steps,
            "held_steps": self.held,
            "changed_steps": self.changed,
            "episodes": self.episodes,
            "failed_episodes": self.terminated,
            "counters": {k: int(v) for k, v in self.chain.counters.items() if v},
        }


def safety_filtered(env: gym.Env[Any, Any], source: str) -> SafetyFilteredEnv:
    """`env` behind the chain of `source`: "manifest" (the env robot's own limits) or a policy-node YAML.

    Raises:
        ValueError: `env` is not a robot_rl/* suite env, or the config is invalid (the message names the field).
    """
    robot = robot_interface_of(env)
    if robot is None:
        raise ValueError("safe exploration needs a robot_rl/* suite env (a robot interface with joint limits)")
    control_hz = 1.0 / float(getattr(env.unwrapped, "control_dt_s", 0.0) or getattr(env.unwrapped, "dt", 0.0))
    return SafetyFilteredEnv(env, load_safety_config(source, robot, control_hz), robot)
