"""Data contracts: transitions, batches, training statistics and the deployable Policy protocol."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from robot_rl.core.specs import PolicySpec

ArrayT = TypeVar("ArrayT")


class DataSource(IntEnum):
    """Where a transition came from: the integer codes of `Batch.source` and the replay buffer's `source` column."""

    ONLINE = 0
    """Collected by the learner's own policy in the environment."""
    DATASET = 1
    """From a dataset: demonstrations, scripted-expert rollouts, recorded episodes."""
    INTERVENTION = 2
    """A human (or scripted operator) took over; the executed action is theirs."""


class Transition(NamedTuple):
    """One environment step, as stored in a replay buffer.

    `terminated` means the MDP reached an absorbing state (no bootstrap); `truncated` means the
    episode was cut (time limit, operator stop) and the value of `next_obs` still counts.
    """

    obs: npt.NDArray[Any]
    """Observation before the action, `[obs_dim]`."""
    action: npt.NDArray[Any]
    """Normalized action in [-1, 1] that was executed, `[act_dim]`."""
    reward: float
    """Scalar reward for this step."""
    next_obs: npt.NDArray[Any]
    """The real observation after the action (never the reset observation), `[obs_dim]`."""
    terminated: bool
    """True when the MDP terminated: the target does not bootstrap from `next_obs`."""
    truncated: bool
    """True when the episode was cut short: the target still bootstraps from `next_obs`."""
    cost: float = 0.0
    """Per-step constraint cost (0 where the source has none)."""
    intervention: bool = False
    """True when a human took over and `action` is theirs."""
    source: int = DataSource.ONLINE
    """`DataSource` code of where the transition came from."""


class Batch(NamedTuple, Generic[ArrayT]):
    """A batch of transitions; arrays are numpy or torch with leading dimension B.

    The first six fields are always present. The optional ones default to None; an algorithm that does not use
    them ignores them (SAC and TD3 do), and a source that cannot fill them leaves them None. B = batch size,
    O = observation size, A = action size, H = action chunk length, T = observation history length.
    """

    obs: ArrayT
    """`[B, obs_dim]` float32, raw (unnormalized) observation before the action."""
    action: ArrayT
    """`[B, act_dim]` float32, the executed action normalized to [-1, 1]."""
    reward: ArrayT
    """`[B]` float32."""
    next_obs: ArrayT
    """`[B, obs_dim]` float32, the real observation after the action."""
    terminated: ArrayT
    """`[B]` float32 in {0, 1}; 1 stops bootstrapping."""
    truncated: ArrayT
    """`[B]` float32 in {0, 1}; informational, bootstrapping continues."""
    action_chunk: ArrayT | None = None
    """`[B, H, A]` float32 normalized to [-1, 1]: the H actions executed from `obs` on (chunk 0 = `action`)."""
    obs_history: ArrayT | None = None
    """`[B, T, O]` float32 raw observations, oldest first; the last one is `obs`."""
    cost: ArrayT | None = None
    """`[B]` float32 ≥ 0, per-step constraint cost (safe/Lyapunov RL), in the task's cost units."""
    intervention: ArrayT | None = None
    """`[B]` float32 in {0, 1}; 1 where a human took over and `action` is theirs."""
    source: ArrayT | None = None
    """`[B]` int64 `DataSource` codes: 0 online, 1 dataset/demo, 2 intervention."""
    discount: ArrayT | None = None
    """`[B]` float32: the bootstrap discount γ^k of an n-step row (`reward` then sums k ≤ n steps and `next_obs` is
    k steps on: `robot_rl.data.nstep`); None = a one-step row (the learner's own γ)."""
    cost_sum: ArrayT | None = None
    """`[B]` float32 ≥ 0: the undiscounted sum of the N costs c_t … c_{t+N−1} from the row on, within its episode
    (`robot_rl.data.nstep.with_cost_sum`; the finite-horizon Lyapunov candidate of LAC); None unless the learner
    asks for it (`cost_horizon`)."""


@dataclass(frozen=True)
class TrainingStats:
    """Scalars produced by one `Algorithm.update` call, namespaced like `loss/critic`."""

    values: Mapping[str, float] = field(default_factory=dict)
    """Metric name → value (averaged over the gradient steps of the call)."""
    num_updates: int = 0
    """Gradient steps performed in this call."""

    def non_finite(self) -> list[str]:
        """Names of metrics whose value is NaN or infinite."""
        return [k for k, v in self.values.items() if not math.isfinite(v)]


@runtime_checkable
class Policy(Protocol):
    """What runs on a robot: physical observations in, physical actions out."""

    spec: PolicySpec

    def reset(self) -> None:
        """Clear any internal state (action chunk queue, history) at episode start."""

    def act(self, obs: Mapping[str, Any] | npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Return the action `[act_dim]` in physical units for one observation."""
        ...
