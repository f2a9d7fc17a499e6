"""Simulation suite: the same URDF robots and tasks in MuJoCo and PyBullet (see docs/sim.md).

Importing `sim` registers the Gymnasium ids (`robot_rl/PandaReach-v0`, ...); `gym.make(id, backend="pybullet")`
builds the PyBullet twin.
"""

from sim.registry import ROBOT_TASK_IDS, register_envs

register_envs()

__all__ = ["ROBOT_TASK_IDS", "register_envs"]
