"""What the generative chunk learners (diffusion, flow, meanflow) share: the config fields and the learner shell."""

from robot_rl.algos.chunked.config import ChunkedConfig
from robot_rl.algos.chunked.learner import ChunkedLearner

__all__ = ["ChunkedConfig", "ChunkedLearner"]
