"""A scripted operator that behaves like a person (issue 15), free of ROS: when to take over and when to hand back.

A person watching a robot takes over when it is about to fail, drives until things are back on track and hands
back. Here "about to fail" is measured against the task's scripted expert (which reads privileged simulator
state): the drift is the normalized distance between what the robot executed and what the expert suggests,

    drift = sqrt(mean_j ((a_j − e_j) / h_j)²),   h_j = (high_j − low_j) / 2   (the command range's half-width),

so 0 means "does what the expert would", 1 means "a whole half-range apart on average". The operator

- engages when the drift exceeds `engage_threshold` for `engage_ticks` consecutive expert samples, unless it is
  cooling down after its last hand-back or this episode's budget of interventions is spent;
- while engaged, outputs the expert's command (physical units, as given);
- releases after at least `min_takeover_s` once the robot counts as recovered for `release_ticks` samples in a
  row — the policy's own proposal (when the caller can observe it) is within `release_threshold` of the expert's,
  or the task reports success (`release_on_success`) — or after `max_takeover_s` whatever the state, when the
  expert stream goes stale (`check`), when an expert sample is rejected, or when the episode ends.

The policy node does not query its policy while a human drives (`ControlStep.tick`), so over ROS the policy's
proposal is not observable during a takeover; there the recovery signal is the task's success flag, and
`max_takeover_s` bounds a takeover that never sees one.

Inputs are validated: a non-finite or wrong-length vector is counted and rejected, never compared and never
driven with. Each intervention gets an `InterventionRecord` (start/end time, duration, samples, why it started and
why it ended). Times are the caller's clock in seconds; the caller feeds one `step` per fresh expert sample and
calls `check` periodically (a stale stream produces no samples at all).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

__all__ = ["InterventionRecord", "OperatorConfig", "OperatorDecision", "OperatorLogic", "OperatorStats", "drift"]


@dataclass(frozen=True)
class OperatorConfig:
    """When the scripted operator takes over and hands back (the `hil_operator` node's parameters)."""

    engage_threshold: float = 0.3
    """Drift (normalized RMS distance, see the module docstring) above which a sample counts toward a takeover."""
    engage_ticks: int = 5
    """Consecutive expert samples with drift above `engage_threshold` before the operator takes over."""
    release_threshold: float = 0.1
    """A policy proposal within this drift of the expert's counts as recovered (<= `engage_threshold`: hysteresis)."""
    release_ticks: int = 5
    """Consecutive recovered samples before the operator hands back (after `min_takeover_s`)."""
    release_on_success: bool = True
    """A sample on which the task reports success counts as recovered (the signal observable over ROS)."""
    min_takeover_s: float = 0.5
    """Shortest takeover, s: a person does not let go the moment things look right (stale expert, a rejected
    expert sample and the episode's end still release at once)."""
    max_takeover_s: float = 5.0
    """Longest takeover, s: then the operator hands back whatever the state."""
    cooldown_s: float = 1.0
    """After a hand-back the operator waits this long (s) before it may take over again."""
    max_interventions_per_episode: int = 3
    """Budget of takeovers per episode (0 = unlimited); drift beyond it is counted, not acted on."""
    stream_timeout_s: float = 0.25
    """An expert sample older than this (s) is stale: an engaged operator releases (never drives on it)."""

    def __post_init__(self) -> None:
        for name in ("engage_threshold", "release_threshold"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0.0):
                raise ValueError(f"OperatorConfig.{name} must be finite and > 0, got {v!r}")
        if self.release_threshold > self.engage_threshold:
            raise ValueError(
                f"OperatorConfig.release_threshold ({self.release_threshold}) must be <= engage_threshold "
                f"({self.engage_threshold}): without that hysteresis the operator would hand back into a takeover"
            )
        for name in ("engage_ticks", "release_ticks"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"OperatorConfig.{name} must be an integer >= 1, got {v!r}")
        b = self.max_interventions_per_episode
        if isinstance(b, bool) or not isinstance(b, int) or b < 0:
            raise ValueError(f"OperatorConfig.max_interventions_per_episode must be an integer >= 0, got {b!r}")
        for name in ("min_takeover_s", "cooldown_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0.0):
                raise ValueError(f"OperatorConfig.{name} must be finite and >= 0, got {v!r}")
        for name in ("max_takeover_s", "stream_timeout_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0.0):
                raise ValueError(f"OperatorConfig.{name} must be finite and > 0, got {v!r}")
        if self.max_takeover_s < self.min_takeover_s:
            raise ValueError(
                f"OperatorConfig.max_takeover_s ({self.max_takeover_s}) must be >= min_takeover_s "
                f"({self.min_takeover_s})"
            )
        if not isinstance(self.release_on_success, bool):
            raise ValueError(f"OperatorConfig.release_on_success must be a bool, got {self.release_on_success!r}")

    @classmethod
    def parameter_defaults(cls) -> dict[str, Any]:
        """Every field with its default (the node declares them as ROS parameters)."""
        defaults = cls()
        return {f.name: getattr(defaults, f.name) for f in fields(cls)}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> OperatorConfig:
        """Build from parameter values (integers accepted for float fields).

        Raises:
            ValueError: an unknown name (listing the valid ones) or an invalid value.
        """
        names = {f.name: f for f in fields(cls)}
        unknown = sorted(k for k in params if k not in names)
        if unknown:
            raise ValueError(f"unknown operator parameter(s) {unknown}; valid ones are {sorted(names)}")
        kwargs: dict[str, Any] = {}
        defaults = cls.parameter_defaults()
        for name, value in params.items():
            if isinstance(defaults[name], float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            kwargs[name] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class InterventionRecord:
    """One takeover: when, how long, and why it started and ended."""

    index: int
    """0-based count of interventions over the operator's life."""
    episode: int
    """The operator's episode count when it started (0-based; `new_episode` advances it)."""
    start_s: float
    """Caller clock at takeover, s."""
    reason: str
    """Why it took over, e.g. "drift 0.42 > 0.30 for 5 ticks"."""
    start_drift: float
    """Drift of the sample that triggered the takeover."""
    end_s: float | None = None
    """Caller clock at hand-back, s (None while it lasts)."""
    end_reason: str = ""
    """Why it handed back, e.g. "recovered: task success for 5 ticks", "max takeover 5 s", "expert stale"."""
    ticks: int = 0
    """Expert samples it drove with."""

    @property
    def duration_s(self) -> float | None:
        """end_s − start_s, s (None while it lasts)."""
        return None if self.end_s is None else self.end_s - self.start_s

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (duration included)."""
        return {**asdict(self), "duration_s": self.duration_s}


@dataclass
class OperatorStats:
    """Counters for diagnostics."""

    samples: int = 0
    """Expert samples stepped (accepted or not)."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Rejected inputs by kind: "expert/non_finite", "expert/shape", "robot/non_finite", "policy/shape", …"""
    last_reject_reason: str = ""
    releases: dict[str, int] = field(default_factory=dict)
    """Hand-backs by kind: "recovered", "max_takeover", "expert_stale", "expert_rejected", "episode_end"."""
    stale: int = 0
    """Times the expert stream went stale (counted once per stale spell)."""
    refused_budget: int = 0
    """Takeovers the drift asked for after the episode's budget was spent."""
    refused_cooldown: int = 0
    """Samples on which the drift asked for a takeover during the cooldown."""
    last_drift: float | None = None
    """Drift of the latest valid sample (None when none was measurable)."""


@dataclass(frozen=True)
class OperatorDecision:
    """What to publish after a `step` or `check`."""

    engaged: bool
    """The operator drives now."""
    command: F64 | None
    """[A] the expert's command to publish while engaged (physical units), else None."""
    drift: float | None = None
    """This sample's drift (None: nothing measurable)."""
    started: InterventionRecord | None = None
    """The intervention that started with this call."""
    ended: InterventionRecord | None = None
    """The intervention that ended with this call (complete record)."""


def drift(actual: F64, expert: F64, half_range: F64) -> float:
    """Normalized RMS distance between two physical commands (see the module docstring)."""
    return float(np.sqrt(np.mean(((actual - expert) / half_range) ** 2)))


class OperatorLogic:
    """The decision logic; feed it one `step` per expert sample, `check` on a timer, `new_episode` at episode ends.

    Args:
        config: thresholds, times and budget.
        command_low / command_high: [A] the command interface's physical range (normalizes the drift).

    Raises:
        ValueError: bounds of different lengths, empty, non-finite, or high <= low.
    """

    def __init__(self, config: OperatorConfig, command_low: npt.ArrayLike, command_high: npt.ArrayLike) -> None:
        low = np.asarray(command_low, dtype=np.float64).reshape(-1)
        high = np.asarray(command_high, dtype=np.float64).reshape(-1)
        if low.shape != high.shape or low.size == 0:
            raise ValueError(f"command bounds need the same non-zero length, got low {low} and high {high}")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
            raise ValueError(f"command bounds must be finite with high > low, got low {low} and high {high}")
        self.config = config
        self.half_range: F64 = (high - low) / 2.0
        self.n_act = int(low.size)
        self.stats = OperatorStats()
        self.records: list[InterventionRecord] = []
        """Every finished intervention, in order."""
        self.episode = 0
        self._current: InterventionRecord | None = None
        self._expert: F64 | None = None
        self._last_sample_s: float | None = None
        self._stale = False
        self._drift_streak = 0
        self._recovered_streak = 0
        self._in_episode = 0
        self._last_release_s: float | None = None
        self._budget_refused_this_streak = False

    # ------------------------------------------------------------------ state
    @property
    def engaged(self) -> bool:
        """The operator drives now."""
        return self._current is not None

    @property
    def current(self) -> InterventionRecord | None:
        """The intervention in progress (ticks so far), or None."""
        return self._current

    @property
    def interventions_this_episode(self) -> int:
        """Takeovers started in the current episode."""
        return self._in_episode

    @property
    def expert_stale(self) -> bool:
        """The last `check` found the expert stream stale (or no sample has arrived yet)."""
        return self._stale or self._last_sample_s is None

    # ------------------------------------------------------------------ inputs
    def _valid(self, kind: str, value: npt.ArrayLike | None) -> F64 | None:
        """The input as a float vector of the command's length, or None (counted when present but invalid)."""
        if value is None:
            return None
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            self._reject(f"{kind}/malformed", f"{kind} is not a float vector")
            return None
        if arr.ndim != 1 or arr.shape[0] != self.n_act:
            self._reject(f"{kind}/shape", f"{kind} needs {self.n_act} values, got shape {arr.shape}")
            return None
        if not np.all(np.isfinite(arr)):
            self._reject(f"{kind}/non_finite", f"{kind} has non-finite values: {arr.tolist()}")
            return None
        return arr

    def _reject(self, key: str, reason: str) -> None:
        self.stats.rejected[key] = self.stats.rejected.get(key, 0) + 1
        self.stats.last_reject_reason = reason

    # ------------------------------------------------------------------ the decision
    def step(
        self,
        now_s: float,
        expert: npt.ArrayLike | None,
        robot: npt.ArrayLike | None = None,
        policy: npt.ArrayLike | None = None,
        success: bool | None = None,
    ) -> OperatorDecision:
        """One fresh expert sample.

        Args:
            now_s: caller clock, s.
            expert: [A] the expert's suggested command (physical).
            robot: [A] the command the robot executed most recently (physical), or None if not known/fresh.
            policy: [A] the policy's own proposal when observable (preferred over `robot` for the drift).
            success: the task's latest success flag, or None if unknown.
        """
        cfg = self.config
        self.stats.samples += 1
        self._last_sample_s = now_s
        self._stale = False
        e = self._valid("expert", expert)
        if e is None:
            # Never drive on (or compare with) a bad expert sample.
            self._drift_streak = self._recovered_streak = 0
            ended = self._release(now_s, "expert_rejected", f"expert rejected: {self.stats.last_reject_reason}")
            return OperatorDecision(False, None, None, ended=ended)
        self._expert = e
        a = self._valid("robot", robot)
        p = self._valid("policy", policy)
        actual = p if p is not None else a
        d = None if actual is None else drift(actual, e, self.half_range)
        self.stats.last_drift = d

        if self._current is not None:
            rec = self._current = replace(self._current, ticks=self._current.ticks + 1)
            elapsed = now_s - rec.start_s
            d_policy = None if p is None else drift(p, e, self.half_range)
            why = ""
            if d_policy is not None and d_policy < cfg.release_threshold:
                why = f"policy drift {d_policy:.2f} < {cfg.release_threshold:.2f}"
            elif cfg.release_on_success and success:
                why = "task success"
            self._recovered_streak = self._recovered_streak + 1 if why else 0
            if elapsed >= cfg.max_takeover_s:
                ended = self._release(now_s, "max_takeover", f"max takeover {cfg.max_takeover_s:g} s")
                return OperatorDecision(False, None, d, ended=ended)
            if elapsed >= cfg.min_takeover_s and self._recovered_streak >= cfg.release_ticks:
                reason = f"recovered: {why} for {self._recovered_streak} ticks"
                ended = self._release(now_s, "recovered", reason)
                return OperatorDecision(False, None, d, ended=ended)
            return OperatorDecision(True, e.copy(), d)

        if d is None or not d > cfg.engage_threshold:
            self._drift_streak = 0
            self._budget_refused_this_streak = False
            return OperatorDecision(False, None, d)
        self._drift_streak += 1
        if self._drift_streak < cfg.engage_ticks:
            return OperatorDecision(False, None, d)
        if self._last_release_s is not None and now_s - self._last_release_s < cfg.cooldown_s:
            self.stats.refused_cooldown += 1
            return OperatorDecision(False, None, d)
        budget = cfg.max_interventions_per_episode
        if budget and self._in_episode >= budget:
            if not self._budget_refused_this_streak:
                self.stats.refused_budget += 1
                self._budget_refused_this_streak = True
            return OperatorDecision(False, None, d)
        reason = f"drift {d:.2f} > {cfg.engage_threshold:.2f} for {self._drift_streak} ticks"
        rec = InterventionRecord(
            index=len(self.records), episode=self.episode, start_s=now_s, reason=reason, start_drift=d, ticks=1
        )
        self._current = rec
        self._in_episode += 1
        self._drift_streak = self._recovered_streak = 0
        return OperatorDecision(True, e.copy(), d, started=rec)

    def check(self, now_s: float) -> OperatorDecision:
        """The periodic check between samples: a stale expert stream or an over-long takeover releases."""
        cfg = self.config
        last = self._last_sample_s
        stale = last is not None and now_s - last > cfg.stream_timeout_s
        if stale and not self._stale:
            self.stats.stale += 1
        self._stale = stale
        ended = None
        if stale:
            self._drift_streak = self._recovered_streak = 0
            age = now_s - (last or now_s)
            ended = self._release(now_s, "expert_stale", f"expert stale ({age:.3f} s > {cfg.stream_timeout_s:g} s)")
        elif self._current is not None and now_s - self._current.start_s >= cfg.max_takeover_s:
            ended = self._release(now_s, "max_takeover", f"max takeover {cfg.max_takeover_s:g} s")
        engaged = self._current is not None
        command = self._expert.copy() if engaged and self._expert is not None else None
        return OperatorDecision(engaged, command, None, ended=ended)

    def new_episode(self, now_s: float) -> InterventionRecord | None:
        """The episode ended: an ongoing takeover ends with it; the budget and streaks start afresh."""
        ended = self._release(now_s, "episode_end", "episode ended")
        self.episode += 1
        self._in_episode = 0
        self._drift_streak = self._recovered_streak = 0
        self._budget_refused_this_streak = False
        return ended

    def _release(self, now_s: float, kind: str, reason: str) -> InterventionRecord | None:
        rec = self._current
        if rec is None:
            return None
        done = replace(rec, end_s=now_s, end_reason=reason)
        self.records.append(done)
        self._current = None
        self._last_release_s = now_s
        self._recovered_streak = 0
        self.stats.releases[kind] = self.stats.releases.get(kind, 0) + 1
        return done
