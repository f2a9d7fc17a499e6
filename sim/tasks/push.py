"""Push: slide a box across the floor to a goal with the closed gripper (sparse success)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.backend import BoxObject, PhysicsBackend, Scene
from sim.tasks.base import Outcome, Task

PUCK = BoxObject("puck", half_extents_m=(0.025, 0.025, 0.025), mass_kg=0.2, friction=0.5)
_IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


class PushTask(Task):
    """Reward is −1 per step until the puck's centre is within `success_distance_m` of the goal (in x, y)."""

    name = "push"
    default_robot = "panda"
    default_interface = "joint_velocity"
    control_hz = 20.0
    max_steps = 100
    success_distance_m = 0.04
    goal_distance_m = (0.10, 0.18)

    def __init__(self) -> None:
        self.goal = np.array([0.5, 0.0, PUCK.half_extents_m[2]])

    def supports_robot(self, robot: str) -> bool:
        return robot in ("panda", "iiwa")

    def scene(self) -> Scene:
        return Scene(floor=True, objects=(PUCK,))

    def reset(self, backend: PhysicsBackend, rng: np.random.Generator) -> None:
        home = np.asarray(backend.robot.home)
        backend.set_robot_state(home, np.zeros_like(home))
        start = np.array([rng.uniform(0.45, 0.55), rng.uniform(-0.10, 0.10), PUCK.half_extents_m[2]])
        angle = rng.uniform(-np.pi, np.pi)
        dist = rng.uniform(*self.goal_distance_m)
        goal = start + dist * np.array([np.cos(angle), np.sin(angle), 0.0])
        # Keep the goal where the arm can push from behind the puck without reaching past its workspace.
        goal[0] = np.clip(goal[0], 0.38, 0.65)
        goal[1] = np.clip(goal[1], -0.25, 0.25)
        self.goal = goal
        backend.set_object_pose(PUCK.name, start, _IDENTITY)

    def observation_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"object_pos": (3,), "object_quat": (4,), "goal_pos": (3,), "object_rel_goal": (3,)}

    def observe(self, backend: PhysicsBackend) -> dict[str, np.ndarray]:
        pos, quat = backend.object_pose(PUCK.name)
        return {
            "object_pos": pos,
            "object_quat": quat,
            "goal_pos": self.goal.copy(),
            "object_rel_goal": self.goal - pos,
        }

    def evaluate(self, backend: PhysicsBackend) -> Outcome:
        pos, _ = backend.object_pose(PUCK.name)
        xy = (self.goal - pos)[:2]
        d = math.sqrt(float(xy.dot(xy)))  # what np.linalg.norm computes for a vector, without its dispatch
        success = d < self.success_distance_m
        return Outcome({"sparse": 0.0 if success else -1.0}, success=success, extra={"distance_m": d})

    def get_state(self) -> dict[str, Any]:
        return {"goal": self.goal.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.goal = np.array(state["goal"], dtype=np.float64)
