"""Lyapunov actor-critic (Han, Zhang, Wang, Pan 2020, "Actor-Critic Reinforcement Learning for Control with
Stability Guarantee", IEEE RA-L): a cost-minimizing actor-critic under a Lyapunov decrease constraint."""

from robot_rl.algos.lac.algorithm import LAC
from robot_rl.algos.lac.config import LACConfig

__all__ = ["LAC", "LACConfig"]
