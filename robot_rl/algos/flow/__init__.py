"""Conditional flow matching / rectified flow over action chunks, sampled with K Euler or midpoint steps."""

from robot_rl.algos.flow.algorithm import Flow
from robot_rl.algos.flow.config import FlowConfig

__all__ = ["Flow", "FlowConfig"]
