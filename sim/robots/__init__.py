"""Robots built from URDFs that ship with pybullet_data (no asset is downloaded)."""

from sim.robots.description import ROBOTS, RobotDescription, get_robot
from sim.robots.urdf import JointInfo

__all__ = ["ROBOTS", "JointInfo", "RobotDescription", "get_robot"]
