"""The reach-around task's scripted expert: two equally good ways around the pillar, one picked per episode.

It follows the IK waypoint scheme of the reach expert (`sim/experts.py`) through two via points beside the pillar
on the episode's side, then to the target. The side comes from the task (`task.route`, drawn from the episode's
seed), so `robot-rl dataset expert` records a 50/50 mixture of left and right demonstrations without knowing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.errors import SimError
from sim.experts import _IKExpert
from sim.tasks.reach_around import PILLAR_CENTER_M, ROUTES

if TYPE_CHECKING:
    from sim.env import RobotTaskEnv

VIA_LATERAL_M = 0.15
"""|y| of the via points: pillar half width (3 cm) + capsule radius (5 cm) + 7 cm of margin."""
VIA_BEFORE_M = 0.05
VIA_AFTER_M = 0.08
"""The via points sit this far before and after the pillar's centre along x, so that no leg clips a corner (the
last leg heads back in toward the target behind the pillar, hence the longer distance after it)."""
PASS_RADIUS_M = 0.035
"""A via point counts as passed once the fingertip is this close (the path rounds it instead of stopping)."""


class ReachAroundExpert(_IKExpert):
    """Via points beside the pillar on one side, then the target.

    Args:
        env: the reach-around env.
        route: +1 (left, +y) or −1 (right, −y) to fix the side; None takes the episode's `task.route`, which is
            what makes the demonstrations bimodal.
    """

    def __init__(self, env: RobotTaskEnv, route: int | None = None) -> None:
        super().__init__(env)
        if route is not None and route not in ROUTES:
            raise SimError(f"route must be one of {ROUTES} or None, got {route!r}")
        self.fixed_route = route
        self.waypoint = 0

    def reset(self) -> None:
        super().reset()
        self.waypoint = 0

    @property
    def route(self) -> int:
        """The side taken this episode: the fixed one, else the one the task drew at reset."""
        if self.fixed_route is not None:
            return self.fixed_route
        return int(self.env.task.route)  # type: ignore[attr-defined]

    def waypoints(self) -> list[np.ndarray]:
        """The via points on this episode's side, then the target (world frame, m)."""
        target = np.asarray(self.env.task.target, dtype=np.float64)  # type: ignore[attr-defined]
        side = self.route * VIA_LATERAL_M
        x0 = float(PILLAR_CENTER_M[0])
        # The via points keep the target's height: the pillar's top (35 cm) is above every target, so going over
        # is not a way the expert knows.
        return [
            np.array([x0 - VIA_BEFORE_M, side, target[2]]),
            np.array([x0 + VIA_AFTER_M, side, target[2]]),
            target,
        ]

    def act(self, obs: np.ndarray) -> np.ndarray:
        points = self.waypoints()
        ee, _ = self.env.backend.link_pose(self.env.robot.ee_link)
        while self.waypoint < len(points) - 1 and float(np.linalg.norm(points[self.waypoint] - ee)) < PASS_RADIUS_M:
            self.waypoint += 1
        return self._move_to(points[self.waypoint])
