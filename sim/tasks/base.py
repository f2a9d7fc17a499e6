"""The task half of a RobotTaskEnv: scene, reset distribution, task observations, reward terms, success."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.backend import PhysicsBackend, Scene


@dataclass
class Outcome:
    """What a task concludes about the current state."""

    reward_terms: dict[str, float]
    """Named reward terms; the env's reward is their sum and each is reported as `info["reward/<name>"]`."""
    success: bool
    """Whether the task is accomplished in this state."""
    terminated: bool = False
    """A true terminal state of the MDP (e.g. the pole fell); never set for time limits."""
    extra: dict[str, float] = field(default_factory=dict)
    """More numbers for `info` (e.g. `cost`, `distance_m`)."""


class Task(abc.ABC):
    """A task: registry name, default robot and interface, scene, episode length and control rate."""

    name: str
    default_robot: str
    default_interface: str
    control_hz: float
    max_steps: int

    @abc.abstractmethod
    def scene(self) -> Scene:
        """Objects the task needs in the world."""

    @abc.abstractmethod
    def reset(self, backend: PhysicsBackend, rng: np.random.Generator) -> None:
        """Place robot, objects and goals for a new episode (all randomness from `rng`)."""

    @abc.abstractmethod
    def observation_shapes(self) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the task's own observation entries, in observation order."""

    @abc.abstractmethod
    def observe(self, backend: PhysicsBackend) -> dict[str, np.ndarray]:
        """The task observation entries."""

    @abc.abstractmethod
    def evaluate(self, backend: PhysicsBackend) -> Outcome:
        """Reward terms, success and termination for the current state."""

    def get_state(self) -> dict[str, Any]:
        """Internal task state (goals), for env save/restore."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - stateless tasks need no override
        """Restore what `get_state` returned."""

    def supports_robot(self, robot: str) -> bool:
        """Whether the task is defined for this robot."""
        return True
