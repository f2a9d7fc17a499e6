"""The observation history a chunked policy conditions on (T_o steps), kept by the deployed runtime (numpy only).

Diffusion Policy (Chi et al. 2023) conditions on the last T_o observations, oldest first. At an episode's start
fewer than T_o exist; the first one is repeated in the missing slots, exactly as the simulated evaluation does
(`robot_rl.train.policy_actor.PolicyActor`), so a bundle sees the same inputs on the robot as in its sim evaluation.
With T_o = 1 the history is the current observation itself.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


class ObservationHistory:
    """The last `length` observations of the episode, flattened oldest first for the policy's input."""

    def __init__(self, length: int) -> None:
        """Args:
        length: T_o, observations per policy input (>= 1).
        """
        if length < 1:
            raise ValueError(f"observation history length must be >= 1, got {length}")
        self.length = length
        self._frames: deque[F32] = deque(maxlen=length)

    def reset(self) -> None:
        """Forget the episode: the next observation is padded into every slot again."""
        self._frames.clear()

    def __len__(self) -> int:
        """Observations actually seen this episode (at most `length`)."""
        return len(self._frames)

    def push(self, observation: F32) -> F32:
        """Append this tick's observation `[O]` and return the flat history `[length * O]` (oldest first, a copy).

        Raises:
            ValueError: the observation's size differs from the ones already in the history.
        """
        frame = np.asarray(observation, dtype=np.float32).reshape(-1).copy()
        if self._frames and frame.shape != self._frames[-1].shape:
            raise ValueError(f"observation has {frame.size} values, the history holds {self._frames[-1].size}")
        if not self._frames:
            # Episode start: repeat the first observation so the input has its full length at once.
            self._frames.extend(frame for _ in range(self.length))
        else:
            self._frames.append(frame)
        if self.length == 1:
            return frame
        return np.concatenate(self._frames)
