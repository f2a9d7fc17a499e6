"""Residual off-policy RL on a frozen base policy (ResFiT-style: Ankile et al. 2025; residual RL: Johannink et al.
2019, Silver et al. 2018): a small actor adds a scaled correction to the base's proposal, trained with TD3
(`residual`) or SAC (`residual_sac`)."""

from robot_rl.algos.residual.algorithm import ResidualTD3
from robot_rl.algos.residual.config import ResidualConfig, ResidualSACConfig
from robot_rl.algos.residual.sac import ResidualSAC

__all__ = ["ResidualConfig", "ResidualSAC", "ResidualSACConfig", "ResidualTD3"]
