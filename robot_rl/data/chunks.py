"""Action chunks and observation histories gathered from a `ReplayBuffer`, never across an episode boundary.

A row `i` of the buffer is the last stored step of its episode when it is `terminated` or `truncated`, when its
`next_obs` is not the next row's `obs` (an episode cut without a flag, e.g. a non-finite env step that never
entered the buffer), or when it is the newest row (nothing after it is stored yet). The oldest row has nothing
before it. Padding, as Diffusion Policy does it:

- an action chunk that would run past its episode's end repeats the episode's last action;
- an observation history that would reach before its episode's start repeats the episode's first observation.

Only the rows a batch needs are compared (B·(H − 1 + T − 1) row comparisons), so a chunked learner pays O(batch)
per batch, and learners that ask for nothing (SAC, TD3) never come here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from robot_rl.core.types import Batch
from robot_rl.data.replay import ReplayBuffer


def _newest(buffer: ReplayBuffer) -> int:
    return (buffer.pos - 1) % buffer.capacity


def _oldest(buffer: ReplayBuffer) -> int:
    return buffer.pos if buffer.size == buffer.capacity else 0


def episode_ends(buffer: ReplayBuffer, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """True where row `rows[k]` is the last stored step of its episode (see the module docstring)."""
    nxt = (rows + 1) % buffer.capacity
    flagged = (buffer.terminated[rows] > 0) | (buffer.truncated[rows] > 0)
    discontinuous = np.any(buffer.next_obs[rows] != buffer.obs[nxt], axis=-1)
    out: npt.NDArray[np.bool_] = flagged | discontinuous | (rows == _newest(buffer))
    return out


def chunk_rows(buffer: ReplayBuffer, idx: npt.NDArray[np.int64], chunk_size: int) -> npt.NDArray[np.int64]:
    """`[B, H]` rows of the actions executed from `idx` on; past the episode's end, its last row repeats."""
    rows = np.empty((len(idx), chunk_size), np.int64)
    rows[:, 0] = idx
    alive = np.ones(len(idx), bool)
    for k in range(1, chunk_size):
        prev = rows[:, k - 1]
        alive &= ~episode_ends(buffer, prev)
        rows[:, k] = np.where(alive, (prev + 1) % buffer.capacity, prev)
    return rows


def history_rows(buffer: ReplayBuffer, idx: npt.NDArray[np.int64], obs_history: int) -> npt.NDArray[np.int64]:
    """`[B, T]` rows of the observations up to `idx` (oldest first, the last is `idx`); before the episode's
    start, its first row repeats."""
    rows = np.empty((len(idx), obs_history), np.int64)
    rows[:, -1] = idx
    alive = np.ones(len(idx), bool)
    for k in range(obs_history - 2, -1, -1):
        cur = rows[:, k + 1]
        before = (cur - 1) % buffer.capacity
        alive &= (cur != _oldest(buffer)) & ~episode_ends(buffer, before)
        rows[:, k] = np.where(alive, before, cur)
    return rows


def gather_chunks(
    buffer: ReplayBuffer, idx: npt.NDArray[np.int64], chunk_size: int = 1, obs_history: int = 1
) -> Batch[npt.NDArray[Any]]:
    """`buffer.gather(idx)` plus `action_chunk [B, H, A]` (H = `chunk_size`) and `obs_history [B, T, O]`
    (T = `obs_history`), padded at episode boundaries as the module docstring says. With H = T = 1 it is exactly
    `buffer.gather(idx)` (the optional fields stay None)."""
    if chunk_size < 1 or obs_history < 1:
        raise ValueError(f"chunk_size and obs_history must be >= 1, got {chunk_size}, {obs_history}")
    batch = buffer.gather(idx)
    if chunk_size == 1 and obs_history == 1:
        return batch
    return batch._replace(
        action_chunk=buffer.action[chunk_rows(buffer, idx, chunk_size)],
        obs_history=buffer.obs[history_rows(buffer, idx, obs_history)],
    )
