"""Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications")."""

from robot_rl.algos.sac.algorithm import SAC
from robot_rl.algos.sac.config import SACConfig

__all__ = ["SAC", "SACConfig"]
