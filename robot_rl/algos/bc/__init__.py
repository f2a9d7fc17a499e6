"""Behaviour cloning: deterministic regression of the (normalized) action a dataset recorded."""

from robot_rl.algos.bc.algorithm import BC
from robot_rl.algos.bc.config import BCConfig

__all__ = ["BC", "BCConfig"]
