"""Step-by-step acting with any `DeployablePolicy`: observation history, action-chunk queue, explicit noise.

The evaluation loop (and anything else that drives a policy one control step at a time) calls `act(obs)` with
one raw observation and gets one physical action. For a plain policy that is one forward; for a history policy
the last T_o observations are stacked (the first observation repeated at an episode start); for a chunked policy
one forward yields H actions of which the first `execution_horizon` are executed before the next forward; a
sampler gets its noise from a seeded generator, so evaluation stays reproducible.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.nets.deployable import DeployablePolicy


class PolicyActor:
    """`act(obs [O]) -> action [A]` (physical) around a `DeployablePolicy`; `reset()` at every episode start."""

    def __init__(
        self, policy: DeployablePolicy, seed: int = 0, execution_horizon: int = 0, noise_scale: float = 1.0
    ) -> None:
        """`noise_scale` multiplies a sampler's standard-normal input noise (0 = every chunk from zero noise, the
        sampler's deterministic output; diagnostics use it to ask whether success depends on the noise)."""
        if not (np.isfinite(noise_scale) and noise_scale >= 0.0):
            raise ValueError(f"noise_scale must be finite and >= 0, got {noise_scale}")
        self.noise_scale = float(noise_scale)
        self.policy = policy
        policy.eval()
        self.history = int(policy.obs_history)
        self.chunk = int(policy.chunk_size)
        spec_horizon = int(getattr(policy.spec, "execution_horizon", 0) or 0)
        self.horizon = execution_horizon or spec_horizon or self.chunk
        if not 1 <= self.horizon <= self.chunk:
            raise ValueError(f"execution horizon must be in [1, chunk_size={self.chunk}], got {self.horizon}")
        self._noise = torch.Generator().manual_seed(seed)
        self._obs: deque[npt.NDArray[np.float32]] = deque(maxlen=self.history)
        self._queue: deque[npt.NDArray[np.float32]] = deque()

    def reset(self, first_obs: npt.NDArray[np.float32] | None = None) -> None:
        """Forget the observation history and any queued actions (a new episode starts)."""
        self._obs.clear()
        self._queue.clear()

    @torch.inference_mode()
    def act(self, obs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The physical action for raw observation `obs [O]`."""
        if self.history == 1 and self.chunk == 1 and self.policy.noise_shape is None:
            out: npt.NDArray[np.float32] = self.policy(torch.from_numpy(obs).unsqueeze(0))[0].numpy()
            return out
        if not self._obs:  # episode start: the history is the first observation repeated
            self._obs.extend([obs] * self.history)
        else:
            self._obs.append(obs)
        if not self._queue:
            x = torch.from_numpy(np.concatenate(list(self._obs))).unsqueeze(0)
            shape = self.policy.noise_shape
            noise = None if shape is None else self.noise_scale * torch.randn((1, *shape), generator=self._noise)
            actions = self.policy(x, noise)[0].numpy()
            if self.chunk == 1:
                return np.asarray(actions)
            self._queue.extend(actions[: self.horizon])
        return self._queue.popleft()
