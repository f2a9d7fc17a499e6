"""Freshness checks of observations and commands against the control clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ObservationLatch:
    """State of the observation watchdog between steps."""

    tripped: bool = True
    """Holding because of a missing/stale observation; starts tripped: no observation has been seen yet."""
    trip_stamp_s: float = float("-inf")
    """Stamp of the stale observation that tripped it; only a strictly newer one can resume."""


FRESH = ObservationLatch(tripped=False)
"""The latch when observations are fresh."""


def check_observation(
    latch: ObservationLatch, now_s: float, stamp_s: float | None, max_age_s: float
) -> tuple[ObservationLatch, str]:
    """The next latch and the hold reason ("" when fresh).

    A stale stamp trips the latch. Resuming needs a stamp newer than the one that tripped it and within
    `max_age_s` of now, so a clock jumping backwards cannot make a frozen sensor look fresh again.
    """
    if stamp_s is None:
        return ObservationLatch(True, latch.trip_stamp_s), "observation_watchdog: no valid observation stamp"
    age_s = now_s - stamp_s
    if age_s > max_age_s:
        return (
            ObservationLatch(True, max(latch.trip_stamp_s, stamp_s)),
            f"observation_watchdog: observation is {age_s:.4g} s old (limit {max_age_s:.4g} s)",
        )
    if age_s < -max_age_s:
        # A stamp from the future means the clocks disagree; trust nothing until they agree again.
        return (
            ObservationLatch(True, latch.trip_stamp_s),
            f"observation_watchdog: observation stamp is {-age_s:.4g} s in the future",
        )
    if latch.tripped and stamp_s <= latch.trip_stamp_s:
        return latch, f"observation_watchdog: waiting for an observation newer than {latch.trip_stamp_s:.6f} s"
    return FRESH, ""


def check_command(now_s: float, stamp_s: float | None, timeout_s: float) -> str:
    """The hold reason for a command stamped `stamp_s`, or "" when it is fresh."""
    if stamp_s is None:
        return "command_watchdog: no valid command stamp"
    age_s = now_s - stamp_s
    if age_s > timeout_s:
        return f"command_watchdog: command is {age_s:.4g} s old (timeout {timeout_s:.4g} s)"
    if age_s < -timeout_s:
        return f"command_watchdog: command stamp is {-age_s:.4g} s in the future"
    return ""
