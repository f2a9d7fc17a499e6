"""The `Link` contract: one small numpy-only filter of the safety chain, and the per-step facts it reads.

A link gets the action the previous link let through and a `Step` (clock, stamps, measurement, the chain's
rate-limit state) and returns the action it lets through (None: hold) with a reason for every change. The chain
owns the order, the hold action, the committed state and the counting; a link owns one rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from robot_rl.safety.inputs import F64, as_measurement

LinkKind = Literal["gate", "check", "filter", "clamp"]
"""What a link may do, which fixes where it may stand in the chain:

- "gate": decides from the step alone (clock, stamps, e-stop) whether to hold; every gate runs every step (so
  watchdog latches advance under an e-stop) and gates come first;
- "check": passes the action unchanged or holds (shape, non-finite, workspace box);
- "filter": may change the action (e.g. a barrier-function filter); only before the clamp;
- "clamp": the final joint-limit clamp (`joint_limits`); exactly one, after every filter.
"""

LINK_KINDS: tuple[LinkKind, ...] = ("gate", "check", "filter", "clamp")
"""Every `LinkKind`."""

Reason = tuple[str, str]
"""(counter key, human-readable reason), e.g. ("velocity_limit", "velocity_limit: j2 3 -> 2.175 rad/s")."""

LinkOutput = tuple[F64 | None, tuple[Reason, ...]]
"""(action let through, or None to hold; one reason per counter key that acted, () = unchanged)."""

UNCHANGED: tuple[Reason, ...] = ()
"""The reasons of a link that let the action through as it was."""


class Step:
    """What the chain knows at this step, shared read-only by every link (built once per `filter` call).

    A slotted class with read-only use rather than a frozen dataclass: it is built on the hot path (positional
    arguments, in the order of the attributes below), and the measurement is validated only when a link asks for
    it (the unchanged-command path never does).
    """

    __slots__ = (
        "_joint_pos",
        "_joint_vel",
        "_n",
        "_q",
        "command_problem",
        "command_stamp_s",
        "control_dt_s",
        "dt_s",
        "fast_pass",
        "measurement_stamp_s",
        "now_raw",
        "now_s",
        "observation_stamp_s",
        "prev_target",
        "q_pred",
        "v_prev",
    )

    def __init__(  # positional on purpose: keyword passing costs ~0.4 µs a step on the hot path
        self,
        now_s: float | None,
        now_raw: object,
        dt_s: float,
        control_dt_s: float,
        joint_pos: object,
        n_joints: int,
        observation_stamp_s: float | None,
        command_stamp_s: float | None,
        command_problem: str,
        prev_target: F64 | None,
        v_prev: F64,
        fast_pass: bool | None,
        joint_vel: object = None,
        measurement_stamp_s: float | None = None,
    ) -> None:
        self.now_s = now_s
        """The chain's clock, s; None when the caller's `now_s` was not a finite time."""
        self.now_raw = now_raw
        """The caller's `now_s` as given (for reasons that quote it)."""
        self.dt_s = dt_s
        """Time since the previous committed step, s (the nominal period on the first step); <= 0 is a clock fault."""
        self.control_dt_s = control_dt_s
        """min(dt_s, control period), s: the step the rate limits use (a late step never allows more motion)."""
        self._joint_pos = joint_pos
        self._n = n_joints
        self._q: F64 | bool | None = False  # False: not validated yet
        self.observation_stamp_s = observation_stamp_s
        """Stamp of the measurement, s (None: missing or not a finite time)."""
        self.command_stamp_s = command_stamp_s
        """Stamp of the command, s (None: missing or not a finite time)."""
        self.command_problem = command_problem
        """Why the command is not n real numbers ("" when it is; the action is then a placeholder)."""
        self.prev_target = prev_target
        """Position interface: the previous committed target, rad (None before the first one)."""
        self.v_prev = v_prev
        """The previous committed joint velocity, rad/s (zeros after a hold or a reset)."""
        self.fast_pass = fast_pass
        """The chain's combined bound test on the raw command: True passed, False failed, None not tried."""
        self._joint_vel = joint_vel
        self.measurement_stamp_s = measurement_stamp_s
        """The joint reading's own (header) stamp, s (None: not given or not a finite time)."""
        self.q_pred: F64 | None = None
        """Velocity interface: where the commands sent so far put the joints (`joint_limits.step_prediction`
        fills it once per step for every link that needs it; None until then)."""

    @property
    def joint_pos_rad(self) -> F64 | None:
        """The measured joint positions [n] (rad), or None when missing or not n finite numbers."""
        q = self._q
        if q is False:
            q = self._q = as_measurement(self._joint_pos, self._n)
        return q  # type: ignore[return-value]

    @property
    def joint_vel_rad_s(self) -> F64 | None:
        """The measured joint velocities [n] (rad/s), or None when missing or not n finite numbers."""
        return as_measurement(self._joint_vel, self._n)


@runtime_checkable
class Link(Protocol):
    """One rule of the safety chain. Numpy only, never raises from `filter`, never lets NaN through."""

    @property
    def name(self) -> str:
        """Unique name in the chain (what the config's `links` lists)."""
        ...

    @property
    def kind(self) -> LinkKind:
        """Where the link may stand and what it may do (see `LinkKind`)."""
        ...

    @property
    def keys(self) -> tuple[str, ...]:
        """Counter keys this link reports under (usually `(name,)`; `joint_limits` has one per limit)."""
        ...

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """The action this link lets through (None: hold) and why it changed it. Must not mutate `action`,
        must not change the link's state (the chain calls `commit` when the step is sent), never raises."""
        ...

    def commit(self) -> None:
        """The step last given to `filter` was sent: keep the state it computed (watchdog latches)."""
        ...

    def record(self, key: str, reason: str) -> None:
        """Count one activation under `key` (one of `keys`) and remember its reason (the chain calls this)."""
        ...

    @property
    def counters(self) -> Mapping[str, int]:
        """Activations per counter key since construction."""
        ...

    @property
    def last_reasons(self) -> Mapping[str, str]:
        """The most recent reason per counter key ("" before the first)."""
        ...

    def reset(self) -> None:
        """Re-arm at activation (the chain's `reset`); counters are kept."""
        ...


class LinkBase:
    """Counting, reasons and no-op state handling for links (subclass and write `filter`, or implement `Link`)."""

    name: str = ""
    """Unique name in the chain."""
    kind: LinkKind = "check"
    """See `LinkKind`."""

    def __init__(self, keys: tuple[str, ...] | None = None) -> None:
        """Args:
        keys: counter keys (default: the link's name).
        """
        if not self.name:
            raise ValueError(f"{type(self).__name__} needs a non-empty class attribute `name`")
        self.keys: tuple[str, ...] = keys if keys is not None else (self.name,)
        """Counter keys this link reports under."""
        self._counts = dict.fromkeys(self.keys, 0)
        self._last = dict.fromkeys(self.keys, "")

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Subclasses write the rule; the base lets everything through."""
        return action, UNCHANGED

    def commit(self) -> None:
        """Stateless by default."""

    def record(self, key: str, reason: str) -> None:
        """Count one activation under `key`."""
        self._counts[key] = self._counts.get(key, 0) + 1
        self._last[key] = reason

    @property
    def counters(self) -> Mapping[str, int]:
        """Activations per counter key."""
        return self._counts

    @property
    def last_reasons(self) -> Mapping[str, str]:
        """The most recent reason per counter key."""
        return self._last

    def reset(self) -> None:
        """Stateless by default."""

    def hold(self, reason: str, key: str | None = None) -> LinkOutput:
        """The output of a link that holds: no action, one reason (prefixed with the key if it is not)."""
        key = key or self.name
        return None, ((key, reason if reason.startswith(key + ":") else f"{key}: {reason}"),)


def placeholder(n: int) -> F64:
    """The action handed to links when the command was not n numbers (the `shape` check holds on it)."""
    return np.zeros(n)
