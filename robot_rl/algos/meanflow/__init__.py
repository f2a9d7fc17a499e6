"""MeanFlow: learn the average velocity over an interval, so one denoiser call maps noise to an action chunk
(Geng et al. 2025, arXiv 2505.13447)."""

from robot_rl.algos.meanflow.algorithm import MeanFlow
from robot_rl.algos.meanflow.config import MeanFlowConfig

__all__ = ["MeanFlow", "MeanFlowConfig"]
