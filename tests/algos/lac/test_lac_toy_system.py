"""The Lyapunov critic learns a Lyapunov function of a toy linear system: x' = 0.9·x + 0.1·a in R², cost
c = ‖x‖², transitions from the fixed stabilizing policy a = −x (so x' = 0.8·x). Its true value is
L(x, π(x)) = ‖x‖² / (1 − γ·0.64): zero only at the origin, growing along every ray."""

from __future__ import annotations

import numpy as np
import torch

from robot_rl.algos import common
from robot_rl.algos.lac import losses
from robot_rl.algos.lac.networks import LyapunovCritic

GAMMA = 0.9


def _step(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    return 0.9 * x + 0.1 * a


def _policy(x: torch.Tensor) -> torch.Tensor:
    return -x


def _train_critic(steps: int = 2000, seed: int = 0) -> LyapunovCritic:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    # radius uniform in [0, 2]: as many states near the origin as far from it (a uniform box would leave the
    # neighbourhood of the minimum, where the values are smallest, with few samples)
    angle, radius = rng.uniform(0, 2 * np.pi, 4096), rng.uniform(0.0, 2.0, 4096)
    x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    a = -x + rng.normal(0.0, 0.1, size=x.shape)  # the fixed policy, with a little exploration noise
    cost = (x * x).sum(-1)
    data = {
        k: torch.as_tensor(v, dtype=torch.float32)
        for k, v in {"obs": x, "action": a, "cost": cost, "next_obs": _step(x, a)}.items()
    }
    critic = LyapunovCritic(2, 2, (64, 64), features=16)
    target = common.TargetNetwork(critic)
    opt = common.adam(critic.parameters(), 3e-3)
    terminated = torch.zeros(256)
    for _ in range(steps):
        idx = torch.as_tensor(rng.integers(0, len(x), 256))
        obs, action, c, next_obs = (data[k][idx] for k in ("obs", "action", "cost", "next_obs"))
        with torch.no_grad():
            next_l = target.module(next_obs, _policy(next_obs))
        loss = losses.critic_loss(critic(obs, action), losses.lyapunov_td_target(c, terminated, next_l, GAMMA))
        opt.zero_grad()
        loss.backward()
        opt.step()
        target.update(0.05)
    return critic


def test_the_lyapunov_critic_vanishes_only_at_the_origin_and_grows_along_rays() -> None:
    critic = _train_critic()

    def value(points: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(points, dtype=torch.float32)
        with torch.no_grad():
            return np.asarray(critic(x, _policy(x)).numpy())

    true_at_1 = 1.0 / (1.0 - GAMMA * 0.64)  # ‖x‖ = 1
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 41), np.linspace(-2, 2, 41)), -1).reshape(-1, 2)
    values = value(grid)
    assert (values >= 0).all()  # a sum of squares, everywhere
    assert np.linalg.norm(grid[values.argmin()]) <= 0.2  # its minimum is at the origin
    assert value(np.zeros((1, 2)))[0] < 0.1 * true_at_1  # ≈ 0 there (the true value is 0)

    radii = np.linspace(0.2, 2.0, 10)
    for angle in np.linspace(0, 2 * np.pi, 12, endpoint=False):
        ray = radii[:, None] * np.array([np.cos(angle), np.sin(angle)])
        along = value(ray)
        assert (np.diff(along) > 0).all(), f"not increasing along the ray at {angle:.2f} rad: {along}"
        assert abs(along[4] / (true_at_1 * radii[4] ** 2) - 1) < 0.2  # close to the true value at r = 1
