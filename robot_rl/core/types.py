"""Data contracts: transitions, batches, training statistics and the deployable Policy protocol."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from robot_rl.core.specs import PolicySpec

ArrayT = TypeVar("ArrayT")


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


class Batch(NamedTuple, Generic[ArrayT]):
    """A batch of transitions; arrays are numpy or torch with leading dimension B."""

    obs: ArrayT
    """`[B, obs_dim]` float32."""
    action: ArrayT
    """`[B, act_dim]` float32, normalized to [-1, 1]."""
    reward: ArrayT
    """`[B]` float32."""
    next_obs: ArrayT
    """`[B, obs_dim]` float32."""
    terminated: ArrayT
    """`[B]` float32 in {0, 1}; 1 stops bootstrapping."""
    truncated: ArrayT
    """`[B]` float32 in {0, 1}; informational, bootstrapping continues."""


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
