"""n-step returns gathered from a `ReplayBuffer`, never across an episode boundary (Sutton & Barto 2018, §7.1;
as used by Rainbow, Hessel et al. 2018, and by residual RL on robots, Ankile et al. 2025).

For row t and horizon n the batch row becomes

    reward   = Σ_{j<k} γ^j · r_{t+j}      next_obs = s_{t+k}      discount = γ^k      terminated = d_{t+k−1}

with k ≤ n the steps up to and including the episode's last stored step (`robot_rl.data.chunks.episode_ends`).
A window that reaches a **terminated** step stops there and does not bootstrap (`terminated` = 1); one that
reaches a **truncated** step (time limit, operator stop) also stops there but still bootstraps from that step's
real `next_obs`, discounted by γ^k. So truncation never turns into termination, and nothing from the next
episode leaks in. The TD target is then `reward + discount · (1 − terminated) · Q'(next_obs, ·)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from robot_rl.core.types import Batch
from robot_rl.data.chunks import episode_ends
from robot_rl.data.replay import ReplayBuffer


def nstep_rows(buffer: ReplayBuffer, idx: npt.NDArray[np.int64], n: int) -> tuple[npt.NDArray[np.int64], Any]:
    """`(rows [B, n], alive [B, n])`: the buffer rows of steps t … t+n−1 and whether each is inside the window
    (step 0 always; step j while no earlier step ended the episode). Dead rows repeat the last live one."""
    rows = np.empty((len(idx), n), np.int64)
    alive = np.ones((len(idx), n), bool)
    rows[:, 0] = idx
    for j in range(1, n):
        prev = rows[:, j - 1]
        alive[:, j] = alive[:, j - 1] & ~episode_ends(buffer, prev)
        rows[:, j] = np.where(alive[:, j], (prev + 1) % buffer.capacity, prev)
    return rows, alive


def with_nstep(
    batch: Batch[npt.NDArray[Any]], buffer: ReplayBuffer, idx: npt.NDArray[np.int64], n: int, gamma: float
) -> Batch[npt.NDArray[Any]]:
    """`batch` (gathered at `idx` from `buffer`) with n-step `reward`, `next_obs`, `terminated`, `truncated` and
    the bootstrap `discount` γ^k (see the module docstring). n = 1 gives the one-step batch with discount γ."""
    if n < 1:
        raise ValueError(f"n-step horizon must be >= 1, got {n}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    rows, alive = nstep_rows(buffer, idx, n)
    k = alive.sum(axis=1)  # steps in each window, 1 … n
    powers = gamma ** np.arange(n, dtype=np.float64)
    reward = (buffer.reward[rows] * alive * powers).sum(axis=1).astype(np.float32)
    last = rows[np.arange(len(idx)), k - 1]
    return batch._replace(
        reward=reward,
        next_obs=buffer.next_obs[last],
        terminated=buffer.terminated[last],
        truncated=buffer.truncated[last],
        discount=(gamma**k).astype(np.float32),
    )


def with_cost_sum(
    batch: Batch[npt.NDArray[Any]], buffer: ReplayBuffer, idx: npt.NDArray[np.int64], n: int
) -> Batch[npt.NDArray[Any]]:
    """`batch` with `cost_sum` = Σ_{j<n} c_{t+j}, undiscounted, over the window of `nstep_rows` (the finite-horizon
    Lyapunov candidate, Han et al. 2020 eq. 9). Every other field is left as gathered (one-step).

    A window that reaches a **terminated** step repeats that step's cost for its remaining n − k terms: the failure
    is an absorbing state that keeps costing, so ending an episode early never looks cheap to a cost minimizer. One
    cut by a time limit or by the newest stored step sums only its k costs (what follows is not stored)."""
    if n < 1:
        raise ValueError(f"cost horizon must be >= 1, got {n}")
    rows, alive = nstep_rows(buffer, idx, n)
    k = alive.sum(axis=1)
    last = rows[np.arange(len(idx)), k - 1]
    total = (buffer.cost[rows].astype(np.float64) * alive).sum(axis=1)
    total += (n - k) * buffer.terminated[last] * buffer.cost[last]
    return batch._replace(cost_sum=total.astype(np.float32))
