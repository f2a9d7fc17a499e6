"""Episode state of a chunked or history policy run step by step: the T_o observation history and the chunk queue.

Numpy only (the robot-side runtime never imports torch). `OnnxPolicy.act` uses both to serve a chunked bundle
through the one-observation-in, one-action-out `Policy` protocol, with a receding horizon: execute the first H_a
actions of a chunk, then plan again from the newest history.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


class ObservationHistory:
    """The `length` most recent flat observations, oldest first; an episode's first one fills every slot.

    Repeating the first observation at an episode start is the convention the learners train with
    (`robot_rl.train.policy_actor.PolicyActor`), so the first plan sees a history it knows.
    """

    def __init__(self, length: int, obs_dim: int) -> None:
        if length < 1 or obs_dim < 1:
            raise ValueError(f"history length and obs_dim must be >= 1, got {length} and {obs_dim}")
        self._rows = np.zeros((length, obs_dim), dtype=np.float32)
        self._empty = True

    @property
    def empty(self) -> bool:
        """True until the first `push` after construction or `clear`."""
        return self._empty

    def clear(self) -> None:
        """Forget every observation (a new episode starts)."""
        self._empty = True

    def push(self, obs: F32) -> None:
        """Append `obs [obs_dim]` (already validated and finite), dropping the oldest."""
        if self._empty:
            self._rows[...] = obs
            self._empty = False
            return
        self._rows[:-1] = self._rows[1:]
        self._rows[-1] = obs

    def flat_into(self, out: F32) -> None:
        """Write the history `[length * obs_dim]` (oldest first, concatenated) into `out` without allocating."""
        out.reshape(-1)[...] = self._rows.reshape(-1)


class ChunkQueue:
    """Actions left to execute from the current chunk; empty means "plan now"."""

    def __init__(self, horizon: int, act_dim: int) -> None:
        if horizon < 1 or act_dim < 1:
            raise ValueError(f"execution horizon and act_dim must be >= 1, got {horizon} and {act_dim}")
        self._actions = np.zeros((horizon, act_dim), dtype=np.float32)
        self._next = horizon  # nothing queued

    @property
    def horizon(self) -> int:
        """H_a: actions executed from each chunk before the next plan."""
        return int(self._actions.shape[0])

    @property
    def empty(self) -> bool:
        return self._next >= self.horizon

    @property
    def position(self) -> int:
        """Index in the current chunk of the action `pop` returns next (H_a when empty)."""
        return self._next

    def clear(self) -> None:
        self._next = self.horizon

    def fill(self, chunk: F32) -> None:
        """Queue the first H_a actions of `chunk [H, act_dim]` (H >= H_a)."""
        self._actions[...] = chunk[: self.horizon]
        self._next = 0

    def pop(self) -> F32:
        """The next queued action (a fresh copy). Raises IndexError when empty."""
        if self.empty:
            raise IndexError("chunk queue is empty: plan first")
        action: F32 = self._actions[self._next].copy()
        self._next += 1
        return action
