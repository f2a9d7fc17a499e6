"""Per-reason log throttling, free of ROS: the first occurrence of every reason is logged, repeats at most once
per interval (with how many were suppressed), so a flood of bad input neither floods the log nor hides a new
kind of fault behind an old one (rclpy's own throttle is per call site, not per reason)."""

from __future__ import annotations

import math


class LogThrottle:
    """Decides whether a message of a given key may be logged now."""

    def __init__(self, interval_s: float = 1.0) -> None:
        """Args:
        interval_s: minimum time between two log lines of the same key, s (finite, >= 0).

        Raises:
            ValueError: a negative or non-finite interval.
        """
        if not (math.isfinite(interval_s) and interval_s >= 0.0):
            raise ValueError(f"LogThrottle: interval_s must be finite and >= 0, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._last_s: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def admit(self, key: str, now_s: float) -> int | None:
        """None when the line must be dropped; else how many lines of `key` were dropped since the last one.

        A clock that went back admits the line (and restarts the interval): better a line too many than none.
        """
        last = self._last_s.get(key)
        if last is not None and 0.0 <= now_s - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last_s[key] = now_s
        return self._suppressed.pop(key, 0)
