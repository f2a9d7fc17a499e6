"""The one episode type every dataset source builds and every dataset consumer reads (numpy only).

T steps, O observation dims, A action dims. Actions are **physical** (rad, rad/s, N*m, …: the deployable
convention of `robot_rl.core.robot`); learners map them to [-1, 1] with `PolicySpec.action.to_normalized`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Episode:
    """One episode: T transitions (s_t, a_t, r_t, s_t+1), with what the policy asked for and who acted."""

    observations: npt.NDArray[np.float32]
    """`[T+1, O]` float32 raw observations; row t is s_t, the last row the final next-observation s_T."""
    actions: npt.NDArray[np.float64]
    """`[T, A]` float64 physical actions that were **executed** (after any safety filter or human takeover)."""
    policy_actions: npt.NDArray[np.float64]
    """`[T, A]` float64 physical actions the policy asked for (equal to `actions` where nothing changed them; a
    recorded NaN stays NaN)."""
    rewards: npt.NDArray[np.float64]
    """`[T]` float64 rewards (the sum of the reward terms)."""
    terminated: bool
    """The last step reached a terminal state: its value is not bootstrapped."""
    truncated: bool
    """The episode was cut after the last step (time limit, operator stop, a recording gap): not terminal."""
    intervention: npt.NDArray[np.bool_]
    """`[T]` True where a human (teleop, scripted operator) produced the executed action."""
    safety_activated: npt.NDArray[np.bool_]
    """`[T]` True where the safety chain changed the action."""
    cost: npt.NDArray[np.float64]
    """`[T]` float64 per-step constraint cost (`info["cost"]` where the env gives one, else 0)."""
    success: bool
    """The task was solved: `info["is_success"]` at the last step (recordings: the episode's end record)."""
    source: str
    """Where the episode came from: "expert", "rollout" or "mcap"."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """JSON-serializable provenance (env id, seed, bundle hash, recording file, …); informational only."""

    def __post_init__(self) -> None:
        t = int(self.rewards.shape[0]) if self.rewards.ndim == 1 else -1
        if t < 1:
            raise ValueError(f"Episode: rewards must be [T] with T >= 1, got shape {self.rewards.shape}")
        if self.observations.ndim != 2 or self.observations.shape[0] != t + 1:
            raise ValueError(f"Episode: observations must be [T+1={t + 1}, O], got {self.observations.shape}")
        if self.actions.ndim != 2 or self.actions.shape[0] != t:
            raise ValueError(f"Episode: actions must be [T={t}, A], got {self.actions.shape}")
        if self.policy_actions.shape != self.actions.shape:
            raise ValueError(
                f"Episode: policy_actions {self.policy_actions.shape} must match actions {self.actions.shape}"
            )
        for name in ("intervention", "safety_activated", "cost"):
            shape = getattr(self, name).shape
            if shape != (t,):
                raise ValueError(f"Episode: {name} must be [T={t}], got {shape}")
        if self.terminated and self.truncated:
            raise ValueError("Episode: the last step cannot be both terminated and truncated")
        dtypes: dict[str, tuple[npt.NDArray[Any], Any]] = {
            "observations": (self.observations, np.float32),
            "actions": (self.actions, np.float64),
            "policy_actions": (self.policy_actions, np.float64),
            "rewards": (self.rewards, np.float64),
            "intervention": (self.intervention, np.bool_),
            "safety_activated": (self.safety_activated, np.bool_),
            "cost": (self.cost, np.float64),
        }
        wrong = {k: str(a.dtype) for k, (a, d) in dtypes.items() if a.dtype != d}
        if wrong:
            raise ValueError(f"Episode: wrong dtypes {wrong} (use Episode.build to convert)")

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def obs_dim(self) -> int:
        """O."""
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        """A."""
        return int(self.actions.shape[1])

    @classmethod
    def build(
        cls,
        observations: npt.ArrayLike,
        actions: npt.ArrayLike,
        rewards: npt.ArrayLike,
        *,
        terminated: bool,
        truncated: bool,
        source: str,
        policy_actions: npt.ArrayLike | None = None,
        intervention: npt.ArrayLike | None = None,
        safety_activated: npt.ArrayLike | None = None,
        cost: npt.ArrayLike | None = None,
        success: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> Episode:
        """An episode from array-likes, converted to the declared dtypes; omitted per-step labels default to
        "the policy acted, unfiltered, at no cost" (`policy_actions` = `actions`, flags False, cost 0)."""
        acts = np.array(actions, dtype=np.float64, ndmin=2)
        t = acts.shape[0]
        return cls(
            observations=np.asarray(observations, dtype=np.float32),
            actions=acts,
            policy_actions=acts.copy() if policy_actions is None else np.array(policy_actions, np.float64, ndmin=2),
            rewards=np.asarray(rewards, dtype=np.float64).reshape(-1),
            terminated=bool(terminated),
            truncated=bool(truncated),
            intervention=np.zeros(t, np.bool_) if intervention is None else np.asarray(intervention, np.bool_),
            safety_activated=(
                np.zeros(t, np.bool_) if safety_activated is None else np.asarray(safety_activated, np.bool_)
            ),
            cost=np.zeros(t, np.float64) if cost is None else np.asarray(cost, np.float64).reshape(-1),
            success=bool(success),
            source=str(source),
            metadata=dict(metadata or {}),
        )


@dataclass(frozen=True)
class DatasetSummary:
    """What a set of episodes holds, for the one-line report of `robot-rl dataset`."""

    episodes: int
    """Number of episodes."""
    steps: int
    """Total transitions."""
    success_rate: float
    """Fraction of successful episodes (NaN with no episodes)."""
    intervention_steps: int
    """Steps whose executed action came from a human."""
    safety_steps: int
    """Steps the safety chain changed."""
    terminated: int
    """Episodes that ended in a terminal state."""

    @classmethod
    def of(cls, episodes: Sequence[Episode]) -> DatasetSummary:
        """Summarize `episodes`."""
        return cls(
            episodes=len(episodes),
            steps=sum(len(e) for e in episodes),
            success_rate=float(np.mean([e.success for e in episodes])) if episodes else float("nan"),
            intervention_steps=int(sum(int(e.intervention.sum()) for e in episodes)),
            safety_steps=int(sum(int(e.safety_activated.sum()) for e in episodes)),
            terminated=sum(e.terminated for e in episodes),
        )

    def line(self) -> str:
        """One human-readable line."""
        return (
            f"{self.episodes} episodes, {self.steps} steps, success rate {self.success_rate:.2f}, "
            f"{self.terminated} terminated, {self.intervention_steps} intervention steps, "
            f"{self.safety_steps} safety-filtered steps"
        )
