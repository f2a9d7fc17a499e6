"""A consumer-side command timeout: hold when the command stream goes quiet, resume only on a fresh command.

ROS-free and clock-agnostic (every call takes `now_s` from the caller's clock), so tests drive it with a fake clock.
The simulated robot (`ros_nodes.core.sim_robot.SimRobot`) feeds it sim time; a bridge to a real driver would feed
it a monotonic clock. What "hold" means per interface is the owner's business: this only says when.

Why a default of a few command periods (`default_command_timeout_s`): one period is what an on-time stream
needs; three absorb the jitter of a loaded host without a spurious hold; the 0.1 s floor keeps fast loops
(50 Hz and up) from tripping on one scheduler hiccup. A stale velocity command moves the robot for at most the
timeout (plus one period until the hold is applied): at 2 rad/s and 0.15 s that is 0.3 rad, against an
unbounded drift without a timeout (issue 11: 1.29 rad after the policy node was killed).
"""

from __future__ import annotations

import math

TIMEOUT_PERIODS = 3.0
"""Default timeout in command periods."""
MIN_DEFAULT_TIMEOUT_S = 0.1
"""Floor of the default timeout (s)."""


def default_command_timeout_s(command_period_s: float) -> float:
    """The default timeout (s): `TIMEOUT_PERIODS` command periods, at least `MIN_DEFAULT_TIMEOUT_S`.

    Raises:
        ValueError: the period is not finite and > 0.
    """
    if not (math.isfinite(command_period_s) and command_period_s > 0.0):
        raise ValueError(f"command_period_s must be finite and > 0, got {command_period_s}")
    return max(TIMEOUT_PERIODS * command_period_s, MIN_DEFAULT_TIMEOUT_S)


class CommandTimeout:
    """Tracks the age of the last valid command and latches a timeout until a fresh one arrives.

    Only valid (accepted) commands may be passed to `fresh`: a rejected command (NaN, wrong length) must not
    refresh the timer, or a stream of garbage would keep a stale command alive.

    Args:
        timeout_s: the longest a command stays in force without a fresh one (s, finite, > 0).
    """

    def __init__(self, timeout_s: float) -> None:
        if not (math.isfinite(timeout_s) and timeout_s > 0.0):
            raise ValueError(f"command timeout_s must be finite and > 0, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self._last_s: float | None = None
        self._timed_out_at_s: float | None = None
        self.timeouts = 0
        """Times the stream went quiet (each latch counts once, however long it lasts)."""

    @property
    def last_command_s(self) -> float | None:
        """Caller's clock at the last valid command (s); None before the first."""
        return self._last_s

    @property
    def timed_out(self) -> bool:
        """True from a timeout until the next valid command."""
        return self._timed_out_at_s is not None

    @property
    def timed_out_at_s(self) -> float | None:
        """Caller's clock when the current timeout latched (s); None while not timed out."""
        return self._timed_out_at_s

    def age_s(self, now_s: float) -> float | None:
        """Seconds since the last valid command; None before the first."""
        return None if self._last_s is None else now_s - self._last_s

    def fresh(self, now_s: float) -> None:
        """A valid command arrived at `now_s`: restart the timer and clear a latched timeout."""
        self._last_s = float(now_s)
        self._timed_out_at_s = None

    def check(self, now_s: float) -> bool:
        """Whether the owner must hold now; True exactly once per timeout (the latch), False otherwise.

        Before the first command there is nothing to time out (the owner holds anyway). A clock that runs
        backwards (now before the last command) never times out by itself; a fresh command re-anchors it.
        """
        if self._last_s is None or self._timed_out_at_s is not None:
            return False
        # The small tolerance keeps a timeout of exactly k periods from depending on float rounding of k * dt.
        if now_s - self._last_s >= self.timeout_s - 1e-9:
            self._timed_out_at_s = float(now_s)
            self.timeouts += 1
            return True
        return False
