"""Reward hooks: user callables that turn each deployed control step into reward terms for fine-tuning later.

A hook is any callable `hook(ctx: StepRecord) -> Mapping[str, float]` with a `name`; it is named in the node's
parameters by an entry point of the group `robot_rl.reward_hooks` (e.g. "rlif") or an import path
("my_pkg.rewards:GraspReward"). A class is instantiated without arguments; a function is used as is. Hooks run in
the control tick, so they must be cheap; a hook that raises or returns non-numbers loses its terms for that step
(counted and reported), it never stops the robot.

A hook sees the tick's `robot_rl.data.step_record.StepRecord` (the same record the recorder writes) with empty
`reward_terms` and `terminated`/`truncated` still False: whether a step ends its episode is known only after the
robot reports it, one tick later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from robot_rl.core.plugins import entry_point_names, import_object, load_entry_point
from robot_rl.data.step_record import StepRecord

ENTRY_POINT_GROUP = "robot_rl.reward_hooks"
"""Entry-point group under which packages register reward hooks."""


RewardFn = Callable[[StepRecord], Mapping[str, float]]
"""A reward hook: the tick's record (before its reward terms and episode-end flags are set) → named terms."""


class RLIFHook:
    """RLIF (Luo et al. 2023): the moment a human intervenes is the reward signal — a penalty at onset.

    The policy is penalised for reaching states where the operator felt the need to take over; no task reward
    is needed. Term: `reward/rlif` = `-penalty` at intervention onset, 0 otherwise. The onset step's executed action
    is already the human's, so the penalty belongs to the policy's action before it, the one that led there: the
    episode session moves it onto that step (`credits_previous_step`; kept on the onset step when the human takes
    over at an episode's first step, where there is none).
    """

    name = "rlif"
    credits_previous_step = True
    """The episode session credits this hook's terms to the step before the one they were computed on."""

    def __init__(self, penalty: float = 1.0) -> None:
        if not (math.isfinite(penalty) and penalty >= 0):
            raise ValueError(f"RLIFHook: penalty must be finite and >= 0, got {penalty}")
        self.penalty = penalty

    def __call__(self, ctx: StepRecord) -> Mapping[str, float]:
        return {"rlif": -self.penalty if ctx.intervention_onset else 0.0}


class SuccessHook:
    """Sparse task reward from the success signal (a detector, the sim, or an operator's button)."""

    name = "success"

    def __call__(self, ctx: StepRecord) -> Mapping[str, float]:
        return {"success": 1.0 if ctx.is_success else 0.0}


def _resolve(spec: str) -> Any:
    if ":" in spec:
        return import_object(spec, "reward hook")
    found = load_entry_point(ENTRY_POINT_GROUP, spec)
    if found is None:
        raise ValueError(
            f"unknown reward hook {spec!r}: registered hooks are {entry_point_names(ENTRY_POINT_GROUP)}; "
            "or give an import path 'module:attr'"
        )
    return found


def load_hook(spec: str) -> tuple[str, RewardFn]:
    """Resolve a hook by entry-point name or `module:attr` import path; returns (name, callable).

    Raises:
        ValueError: unknown name, import failure, or the target is not callable.
    """
    target = _resolve(spec.strip())
    hook = target() if isinstance(target, type) else target
    if not callable(hook):
        raise ValueError(f"reward hook {spec!r} resolved to {hook!r}, which is not callable")
    name = str(getattr(hook, "name", "") or getattr(hook, "__name__", "") or spec)
    return name, hook


class RewardHooks:
    """Runs every hook on a step and merges their terms; failures are counted, never raised."""

    def __init__(self, hooks: list[tuple[str, RewardFn]]) -> None:
        self.hooks = hooks
        self.previous_step_terms: set[str] = set()
        """Terms of hooks that credit the step before (`credits_previous_step`, e.g. RLIF's), as seen so far."""
        self.failures: dict[str, int] = {name: 0 for name, _ in hooks}
        """Steps on which each hook raised or returned something unusable."""
        self.last_failure = ""
        """Message of the most recent hook failure."""

    @classmethod
    def from_specs(cls, specs: list[str]) -> RewardHooks:
        """Load hooks from entry-point names / import paths (empty strings ignored)."""
        return cls([load_hook(s) for s in specs if s.strip()])

    def __call__(self, ctx: StepRecord) -> dict[str, float]:
        terms: dict[str, float] = {}
        for name, hook in self.hooks:
            try:
                out = hook(ctx)
                got = {str(k): float(v) for k, v in out.items()}
            except Exception as exc:  # user code: report it, keep the robot running
                self.failures[name] += 1
                self.last_failure = f"reward hook {name!r} failed: {type(exc).__name__}: {exc}"
                continue
            if not all(math.isfinite(v) for v in got.values()):
                self.failures[name] += 1
                self.last_failure = f"reward hook {name!r} returned non-finite terms {got}"
                continue
            terms.update(got)
            if getattr(hook, "credits_previous_step", False):
                self.previous_step_terms.update(got)
        return terms
