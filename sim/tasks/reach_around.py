"""Reach around a pillar: the suite's multimodal imitation task (issue 12).

A thin pillar stands on the straight line between the gripper's start and the target, so every good path goes
around it, on the left (+y) or on the right (−y). The scripted expert (`sim/reach_around_expert.py`) picks a side
at random per episode; a policy that averages the two demonstrated ways drives into the pillar. That is what
separates an MLP regressor (the average) from a generative policy (a sample of one way).

The pillar is *virtual*: the task checks a capsule around the gripper and wrist against the pillar's box after
every control step and ends the episode as a failure on contact. Neither engine simulates it, so contact means
exactly the same thing in MuJoCo and PyBullet (a physical pillar would let a blocked arm slide off its side, and
slide differently in each engine). The scene therefore has no objects besides the floor.

Which side the expert takes is drawn here, from the episode's task stream after the layout, and kept out of the
observation: the mode is the demonstrator's choice, not part of the state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.backend import PhysicsBackend, Scene
from sim.tasks.base import Outcome, Task

PILLAR_CENTER_M = np.array([0.48, 0.0, 0.175])
"""Centre of the pillar's box (world frame); it stands on the floor."""
PILLAR_HALF_EXTENTS_M = np.array([0.025, 0.03, 0.175])
"""Half sizes of the pillar's box along x, y, z: 5 cm deep, 6 cm wide, 35 cm tall (the gripper travels at about
20 cm, so going over it is not a way)."""

# Joint positions (panda_joint1..7) that put the fingertip centre at (0.33, 0, 0.20) m pointing down: the
# "ready" pose lowered with the IK expert (both engines agree on it within 1 mm).
START_Q_RAD = np.array([0.0, -0.467, 0.0, -2.908, 0.0, 2.441, 0.785])
TARGET_LOW_M = np.array([0.63, -0.03, 0.17])
TARGET_HIGH_M = np.array([0.68, 0.03, 0.23])
"""Targets are drawn behind the pillar, close to the start→pillar line, so neither side is clearly shorter."""

GRIPPER_LINKS = ("panda_grasptarget", "panda_link7")
"""The capsule checked against the pillar runs between these link origins (fingertip centre → wrist)."""
GRIPPER_RADIUS_M = 0.05
"""Capsule radius: the closed fingers, hand and wrist flange fit inside it."""
CAPSULE_SAMPLES = 6
"""Points checked along the capsule's axis. The axis stays near vertical, as do the pillar's faces, so the
distance varies almost linearly along it and six points (4 cm apart) find its minimum to well under 1 mm."""

ROUTES = (1, -1)
"""The expert's two ways around: +1 passes the pillar on the left (+y), −1 on the right (−y)."""


def point_box_distance(points: np.ndarray, center: np.ndarray, half_extents: np.ndarray) -> np.ndarray:
    """Euclidean distance (m) from each point [N, 3] to an axis-aligned box (0 inside it)."""
    outside = np.maximum(np.abs(points - center) - half_extents, 0.0)
    return np.asarray(np.sqrt((outside * outside).sum(axis=-1)))


class ReachAroundTask(Task):
    """Dense reward −distance (m), +1 per step within `success_distance_m` of the target (success), and
    −`collision_penalty` on touching the pillar, which terminates the episode as a failure; `info["cost"]` is the
    squared distance (m²)."""

    name = "reach_around"
    default_robot = "panda"
    default_interface = "joint_velocity"
    control_hz = 20.0
    max_steps = 40
    success_distance_m = 0.04
    start_noise_rad = 0.04
    # Larger than the −distance a policy could still collect over the rest of an episode (≤ 0.5 m × 40 steps),
    # so ending an episode on the pillar never pays.
    collision_penalty = 25.0

    def __init__(self) -> None:
        self.target = (TARGET_LOW_M + TARGET_HIGH_M) / 2
        self.route = ROUTES[0]
        """The side the expert takes this episode (+1 left, −1 right); privileged, never observed."""
        self._offsets = np.linspace(0.0, 1.0, CAPSULE_SAMPLES)[:, None]

    def supports_robot(self, robot: str) -> bool:
        # The start pose and the capsule's links are the Panda's.
        return robot == "panda"

    def scene(self) -> Scene:
        return Scene(floor=True)

    def reset(self, backend: PhysicsBackend, rng: np.random.Generator) -> None:
        limits = backend.robot.limits(backend.robot.joints)
        q = START_Q_RAD + rng.uniform(-self.start_noise_rad, self.start_noise_rad, size=START_Q_RAD.shape)
        backend.set_robot_state(np.clip(q, limits["lower"], limits["upper"]), np.zeros_like(q))
        self.target = rng.uniform(TARGET_LOW_M, TARGET_HIGH_M)
        # Drawn last, so the layout (and hence the observation) is the same whichever side comes up.
        self.route = ROUTES[int(rng.integers(len(ROUTES)))]

    def observation_shapes(self) -> dict[str, tuple[int, ...]]:
        # The pillar never moves, so it needs no entry; the route is deliberately absent.
        return {"target_pos": (3,), "target_rel": (3,)}

    def observe(self, backend: PhysicsBackend) -> dict[str, np.ndarray]:
        ee, _ = backend.link_pose(backend.robot.ee_link)
        return {"target_pos": self.target.copy(), "target_rel": self.target - ee}

    def pillar_clearance_m(self, backend: PhysicsBackend) -> float:
        """Distance (m) between the gripper capsule's surface and the pillar; ≤ 0 means contact."""
        tip, _ = backend.link_pose(GRIPPER_LINKS[0])
        wrist, _ = backend.link_pose(GRIPPER_LINKS[1])
        axis = tip + self._offsets * (wrist - tip)
        return float(point_box_distance(axis, PILLAR_CENTER_M, PILLAR_HALF_EXTENTS_M).min()) - GRIPPER_RADIUS_M

    def evaluate(self, backend: PhysicsBackend) -> Outcome:
        ee, _ = backend.link_pose(backend.robot.ee_link)
        diff = self.target - ee
        d2 = float(diff.dot(diff))
        d = math.sqrt(d2)
        clearance = self.pillar_clearance_m(backend)
        collided = clearance <= 0.0
        success = d < self.success_distance_m and not collided
        terms = {
            "distance": -d,
            "success": 1.0 if success else 0.0,
            "collision": -self.collision_penalty if collided else 0.0,
        }
        # cost: the squared distance (m²), as in the reach task (for LAC); a collision ends the episode, and LAC
        # treats a terminated step as absorbing, so it keeps costing.
        extra = {"distance_m": d, "pillar_clearance_m": clearance, "cost": d2}
        return Outcome(terms, success=success, terminated=collided, extra=extra)

    def get_state(self) -> dict[str, Any]:
        return {"target": self.target.copy(), "route": self.route}

    def set_state(self, state: dict[str, Any]) -> None:
        self.target = np.array(state["target"], dtype=np.float64)
        self.route = int(state["route"])
