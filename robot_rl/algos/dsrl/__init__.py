"""DSRL: SAC that steers a frozen diffusion/flow/MeanFlow policy by choosing its initial noise (Wagenmaker et al.
2025); see `robot_rl.residual.noise_space`."""

from robot_rl.algos.dsrl.algorithm import DSRL, DSRLConfig

__all__ = ["DSRL", "DSRLConfig"]
