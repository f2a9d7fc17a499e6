"""Cart-pole balance: the classic stability task, with a positive-definite quadratic cost for Lyapunov work."""

from __future__ import annotations

import numpy as np

from sim.backend import PhysicsBackend, Scene
from sim.tasks.base import Outcome, Task

# Cost weights on (cart position m, pole angle rad, cart velocity m/s, pole rate rad/s): c(s) = sᵀ Q s is
# positive definite, zero only at the upright equilibrium — a Lyapunov-candidate cost.
COST_Q = np.diag([0.1, 1.0, 0.01, 0.01])


def wrap_angle(theta: float) -> float:
    """Angle mapped to [-π, π)."""
    return float((theta + np.pi) % (2 * np.pi) - np.pi)


class CartPoleBalanceTask(Task):
    """Keep the pole upright and the cart near the centre; the episode terminates when the pole falls."""

    name = "cartpole_balance"
    default_robot = "cartpole"
    default_interface = "joint_effort"
    control_hz = 50.0
    max_steps = 250
    fall_angle_rad = 0.8
    track_half_length_m = 5.0
    start_noise = (0.1, 0.05, 0.05, 0.05)  # x m, theta rad, xdot m/s, thetadot rad/s

    def supports_robot(self, robot: str) -> bool:
        return robot == "cartpole"

    def scene(self) -> Scene:
        return Scene(floor=False)

    def reset(self, backend: PhysicsBackend, rng: np.random.Generator) -> None:
        s = rng.uniform(-1.0, 1.0, size=4) * np.asarray(self.start_noise)
        backend.set_robot_state(s[:2], s[2:])

    def observation_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def observe(self, backend: PhysicsBackend) -> dict[str, np.ndarray]:
        return {}

    def state_error(self, backend: PhysicsBackend) -> np.ndarray:
        """(x, wrapped θ, ẋ, θ̇): the deviation from the upright equilibrium the cost is defined on."""
        q, qd = backend.robot_state()
        x, theta = q.tolist()  # Python floats: the same arithmetic as on numpy scalars, without their overhead
        xdot, thetadot = qd.tolist()
        return np.array([x, wrap_angle(theta), xdot, thetadot])

    def evaluate(self, backend: PhysicsBackend) -> Outcome:
        e = self.state_error(backend)
        cost = float(e @ COST_Q @ e)
        x, theta = e[0].item(), e[1].item()
        fell = abs(theta) > self.fall_angle_rad or abs(x) > self.track_half_length_m
        return Outcome(
            {"alive": 0.0 if fell else 1.0, "cost": -cost},
            success=(not fell) and abs(theta) < 0.1,
            terminated=fell,
            extra={"cost": cost},
        )
