"""Diffusion Policy: DDPM training over action chunks (ε- or sample-prediction, squared-cosine schedule), DDIM
sampling with K steps (Chi et al. 2023)."""

from robot_rl.algos.diffusion.algorithm import Diffusion
from robot_rl.algos.diffusion.config import DiffusionConfig

__all__ = ["Diffusion", "DiffusionConfig"]
