"""Numpy-only contracts shared by training, export, safety and the robot runtime."""

from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch, Policy, TrainingStats, Transition

__all__ = [
    "ActionSpec",
    "Batch",
    "ObservationSpec",
    "Policy",
    "PolicySpec",
    "TrainingStats",
    "Transition",
]
