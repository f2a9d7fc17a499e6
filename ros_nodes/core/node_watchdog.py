"""The policy node's own watchdog, free of ROS: decides when its timer must tick because the inputs went quiet.

In the topic-triggered mode the node ticks on each joint state, so a stream that stops would stop the commands
too (and a downstream controller would keep executing the last velocity). In the timer-triggered mode the
control thread ticks, but a stalled thread would do the same. The node runs a timer at the control period in
both modes and asks `due(now_s)`: when no input-driven tick happened for `timeout_s`, the timer ticks itself —
the safety chain's observation watchdog then sees the stale (or faulted) input and the tick publishes a hold.
So silence turns into a hold within `timeout_s` + one period, never into nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WatchdogStatus:
    """What the watchdog knows at one instant (for `/diagnostics` and the log)."""

    armed: bool
    """The node is active (the watchdog only watches while control runs)."""
    silent_s: float
    """Seconds since the last input-driven tick (0 while not armed)."""
    since_tick_s: float
    """Seconds since any tick, the watchdog's own included (0 while not armed)."""
    standing_in: bool
    """The timer ticks in place of the inputs (no input-driven tick for the timeout or longer)."""
    stalled: bool
    """Nothing ticked for longer than the timeout, not even the watchdog: the node is not controlling."""
    watchdog_ticks: int
    """Ticks the watchdog issued since it was created (each one published a command, normally a hold)."""


class NodeWatchdog:
    """Tracks input-driven and watchdog ticks against a timeout; `due` says when the timer must tick."""

    def __init__(self, period_s: float, timeout_s: float) -> None:
        """Args:
        period_s: the control period, s (the timer's period).
        timeout_s: silence allowed before the timer ticks in place of the inputs, s (the observation timeout).

        Raises:
            ValueError: a period or timeout that is not finite and > 0.
        """
        for name, value in (("period_s", period_s), ("timeout_s", timeout_s)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"NodeWatchdog: {name} must be finite and > 0, got {value!r}")
        self.period_s = float(period_s)
        self.timeout_s = float(timeout_s)
        self.watchdog_ticks = 0
        """Ticks issued by the watchdog (a count for `/diagnostics`)."""
        self._armed = False
        self._last_input_tick_s = 0.0
        self._last_tick_s = 0.0

    def arm(self, now_s: float) -> None:
        """Start watching (on activate): the inputs get a full timeout from now."""
        self._armed = True
        self._last_input_tick_s = self._last_tick_s = now_s

    def disarm(self) -> None:
        """Stop watching (on deactivate)."""
        self._armed = False

    def on_tick(self, now_s: float, *, by_watchdog: bool = False) -> None:
        """Record a tick: input-driven (a joint state, the control thread) or the watchdog's own."""
        self._last_tick_s = max(self._last_tick_s, now_s)
        if by_watchdog:
            self.watchdog_ticks += 1
        else:
            self._last_input_tick_s = max(self._last_input_tick_s, now_s)

    def due(self, now_s: float) -> bool:
        """Whether the timer must tick now: armed and no input-driven tick for `timeout_s` or longer.

        A clock that jumped back (now before the last tick) counts as silence too: holding is the safe answer.
        """
        if not self._armed:
            return False
        silent_s = now_s - self._last_input_tick_s
        return silent_s >= self.timeout_s or silent_s < 0.0

    def status(self, now_s: float) -> WatchdogStatus:
        """The watchdog's view at `now_s`."""
        if not self._armed:
            return WatchdogStatus(False, 0.0, 0.0, False, False, self.watchdog_ticks)
        silent_s = now_s - self._last_input_tick_s
        since_tick_s = now_s - self._last_tick_s
        return WatchdogStatus(
            armed=True,
            silent_s=silent_s,
            since_tick_s=since_tick_s,
            standing_in=self.due(now_s),
            stalled=since_tick_s > self.timeout_s,
            watchdog_ticks=self.watchdog_ticks,
        )
