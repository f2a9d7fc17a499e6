"""Software e-stop latch: engage stops motion, release unlatches, only an explicit enable resumes."""

from __future__ import annotations


class EStopLatch:
    """Latched software e-stop (complements, never replaces, the hardwired one).

    engaged ──release()──► released (still holding) ──enable()──► motion enabled
    """

    def __init__(self) -> None:
        self.engaged = False
        """The e-stop is latched."""
        self.enabled = True
        """Motion is allowed (False from engage until an explicit enable)."""
        self.reason = ""
        """Why it was engaged most recently."""

    def engage(self, reason: str) -> None:
        """Latch; the reason is kept for diagnostics."""
        self.engaged = True
        self.enabled = False
        self.reason = str(reason) or "no reason given"

    def release(self) -> None:
        """Unlatch. Motion stays disabled: resetting an e-stop must never restart the robot by itself."""
        self.engaged = False

    def enable(self) -> None:
        """Allow motion again after a release.

        Raises:
            RuntimeError: the e-stop is still engaged.
        """
        if self.engaged:
            raise RuntimeError(f"cannot enable motion: the e-stop is still engaged ({self.reason}); release it first")
        self.enabled = True

    def hold_reason(self) -> str:
        """The reason to hold this step, or "" when motion is allowed."""
        if self.engaged:
            return f"estop: engaged ({self.reason})"
        if not self.enabled:
            return "estop: released, waiting for enable"
        return ""
