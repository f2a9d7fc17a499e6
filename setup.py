"""Shim for colcon (its ament_python build type runs setup.py); everything is configured in pyproject.toml.

No setup.cfg on purpose: `[install] install_scripts=$base/lib/robot_rl` (the `ros2 pkg create` template) would move
pip's console scripts (robot-rl, robot-rl-policy-node, ...) out of the environment's bin/. ros2 launch finds the
nodes through the lib/robot_rl/<exec> wrappers installed as data files instead (launch/README.md).
"""

from setuptools import setup

setup()
