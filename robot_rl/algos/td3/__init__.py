"""TD3 (Fujimoto et al. 2018): the cheap deterministic baseline, built from SAC's pieces."""

from robot_rl.algos.td3.algorithm import TD3
from robot_rl.algos.td3.config import TD3Config

__all__ = ["TD3", "TD3Config"]
