"""Reward hooks: user callables that turn each deployed control step into reward terms for fine-tuning later.

A hook is any callable `hook(ctx: StepContext) -> Mapping[str, float]` with a `name`; it is named in the node's
parameters by an entry point of the group `robot_rl.reward_hooks` (e.g. "rlif") or an import path
("my_pkg.rewards:GraspReward"). A class is instantiated without arguments; a function is used as is. Hooks run in
the control tick, so they must be cheap; a hook that raises or returns non-numbers loses its terms for that step
(counted and reported), it never stops the robot.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import numpy as np
import numpy.typing as npt

ENTRY_POINT_GROUP = "robot_rl.reward_hooks"
"""Entry-point group under which packages register reward hooks."""


@dataclass(frozen=True)
class StepContext:
    """What a reward hook sees of one control step."""

    step: int
    """Control-step index within the episode (0-based)."""
    now_s: float
    """Node clock time of the tick, s."""
    observation: npt.NDArray[np.float32] | None
    """Flat observation fed to the policy (None while an observation source is missing)."""
    policy_action: npt.NDArray[np.float64]
    """What the policy asked for, physical units (NaN where it failed)."""
    executed_action: npt.NDArray[np.float64]
    """What was sent to the robot after arbitration and the safety chain, physical units."""
    intervention: bool
    """A human was in control this step."""
    intervention_onset: bool
    """The human took over at this step."""
    intervention_offset: bool
    """The human handed back at this step."""
    safety_reasons: tuple[str, ...]
    """Why the safety chain changed the action this step (empty if it passed unchanged)."""
    is_success: bool | None
    """Latest task-success signal (`/robot_rl/is_success`), None if none was received."""


RewardFn = Callable[[StepContext], Mapping[str, float]]


class RLIFHook:
    """RLIF (Luo et al. 2023): the moment a human intervenes is the reward signal — a penalty at onset.

    The policy is penalised for reaching states where the operator felt the need to take over; no task reward
    is needed. Term: `reward/rlif` = `-penalty` at intervention onset, 0 otherwise.
    """

    name = "rlif"

    def __init__(self, penalty: float = 1.0) -> None:
        if not (math.isfinite(penalty) and penalty >= 0):
            raise ValueError(f"RLIFHook: penalty must be finite and >= 0, got {penalty}")
        self.penalty = penalty

    def __call__(self, ctx: StepContext) -> Mapping[str, float]:
        return {"rlif": -self.penalty if ctx.intervention_onset else 0.0}


class SuccessHook:
    """Sparse task reward from the success signal (a detector, the sim, or an operator's button)."""

    name = "success"

    def __call__(self, ctx: StepContext) -> Mapping[str, float]:
        return {"success": 1.0 if ctx.is_success else 0.0}


def _resolve(spec: str) -> Any:
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"reward hook {spec!r}: cannot import module {module_name!r} ({exc})") from exc
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ValueError(f"reward hook {spec!r}: module {module_name!r} has no attribute {attr!r}") from None
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
    if not found:
        names = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        raise ValueError(
            f"unknown reward hook {spec!r}: registered hooks are {names}; or give an import path 'module:attr'"
        )
    return found[0].load()


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
        self.failures: dict[str, int] = {name: 0 for name, _ in hooks}
        """Steps on which each hook raised or returned something unusable."""
        self.last_failure = ""
        """Message of the most recent hook failure."""

    @classmethod
    def from_specs(cls, specs: list[str]) -> RewardHooks:
        """Load hooks from entry-point names / import paths (empty strings ignored)."""
        return cls([load_hook(s) for s in specs if s.strip()])

    def __call__(self, ctx: StepContext) -> dict[str, float]:
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
        return terms
