"""Freshness gates: the observation watchdog (and clock faults) and the command watchdog."""

from __future__ import annotations

from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.inputs import F64
from robot_rl.safety.link import LinkBase, LinkKind, LinkOutput, Step
from robot_rl.safety.watchdog import ObservationLatch, check_command, check_observation

_MIN_DT_FRACTION = 1e-6
"""Steps shorter than this fraction of the control period are clock faults (also keeps Δq/dt finite)."""


class ObservationWatchdogLink(LinkBase):
    """Hold on a missing, stale or future measurement stamp, or when the clock stalls or runs backwards.

    Resuming after a stale stamp needs a strictly newer one (`ObservationLatch`), so a clock that jumps back
    cannot make a frozen sensor look fresh.
    """

    name = "observation_watchdog"
    kind: LinkKind = "gate"

    def __init__(self, config: SafetyConfig, kinematics: object = None) -> None:
        """Args:
        config: the control period and `stale_observation_periods`.
        kinematics: unused.
        """
        super().__init__()
        self._max_age_s = config.stale_observation_periods * config.control_period_s
        self._min_dt_s = _MIN_DT_FRACTION * config.control_period_s
        self._latch = ObservationLatch()
        self._pending = self._latch

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Hold reason for this step's clock and measurement stamp; the latch it implies waits for `commit`."""
        now = step.now_s
        if now is None:
            self._pending = self._latch
            return None, (
                ("observation_watchdog", f"observation_watchdog: now_s={step.now_raw!r} is not a finite time"),
            )
        # The latch advances even while another gate holds, so a release never resumes on stale data.
        self._pending, reason = check_observation(self._latch, now, step.observation_stamp_s, self._max_age_s)
        if step.dt_s < self._min_dt_s:
            reason = f"observation_watchdog: clock step of {step.dt_s:.4g} s (clock went back or a repeated call)"
        return (action, ()) if not reason else (None, (("observation_watchdog", reason),))

    def commit(self) -> None:
        """Keep the latch of the step that was sent."""
        self._latch = self._pending

    def reset(self) -> None:
        """A fresh observation is required after re-arming."""
        self._latch = self._pending = ObservationLatch()


class CommandWatchdogLink(LinkBase):
    """Hold on a missing, stale (older than `command_timeout_s`) or future command stamp."""

    name = "command_watchdog"
    kind: LinkKind = "gate"

    def __init__(self, config: SafetyConfig, kinematics: object = None) -> None:
        """Args:
        config: `command_timeout_s`.
        kinematics: unused.
        """
        super().__init__()
        self._timeout_s = config.command_timeout_s

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Hold reason for this step's command stamp (no clock: the observation watchdog reports it)."""
        if step.now_s is None:
            return None, (("command_watchdog", "command_watchdog: no valid clock to age the command against"),)
        reason = check_command(step.now_s, step.command_stamp_s, self._timeout_s)
        return (action, ()) if not reason else (None, (("command_watchdog", reason),))
