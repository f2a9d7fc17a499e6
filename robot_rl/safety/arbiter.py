"""Who drives this step: e-stop > human (dead-man held, fresh command) > policy; intervention edges for labels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_rl.safety.inputs import as_time


@dataclass(frozen=True, slots=True)
class Selection:
    """The arbiter's choice for one step; the command still goes through the safety chain."""

    source: str
    """"estop", "human", "policy" or "none" (no policy command this step)."""
    command: np.ndarray | None
    """The chosen command, or None: the chain then holds (e-stop, stale human command, no policy command)."""
    intervention: bool
    """A human is in control this step (label for the recorded transition)."""
    onset: bool
    """The intervention started this step."""
    offset: bool
    """The intervention ended this step."""


class Arbiter:
    """Select between the policy and a human operator, tracking intervention onset/offset edges."""

    def __init__(self, human_timeout_s: float = 0.25) -> None:
        """Args:
        human_timeout_s: a human command older than this no longer drives (the robot holds instead).

        Raises:
            ValueError: the timeout is not finite and > 0.
        """
        timeout = as_time(human_timeout_s)
        if timeout is None or timeout <= 0:
            raise ValueError(f"human_timeout_s must be finite and > 0, got {human_timeout_s!r}")
        self.human_timeout_s = timeout
        """Freshness limit of human commands, s."""
        self._intervening = False
        self._intervention_steps = 0

    def reset(self) -> None:
        """Start an episode: no intervention in progress, step count zero."""
        self._intervening = False
        self._intervention_steps = 0

    @property
    def intervention_steps(self) -> int:
        """Steps since the last reset during which the human was in control."""
        return self._intervention_steps

    def select(
        self,
        *,
        now_s: float,
        policy_command: np.ndarray | None,
        human_command: np.ndarray | None,
        human_stamp_s: float | None,
        human_active: bool,
        estop_engaged: bool,
    ) -> Selection:
        """Choose this step's source. Never raises; never falls back to the policy while the dead-man is held."""
        if estop_engaged:
            source, command, intervention = "estop", None, False
        elif human_active:
            # The human keeps authority while holding the dead-man, even with a stale command: the chain then
            # holds, because handing control back to the policy is the human's decision, not a timeout's.
            source, intervention = "human", True
            command = human_command if self._human_fresh(now_s, human_command, human_stamp_s) else None
        elif policy_command is not None:
            source, command, intervention = "policy", policy_command, False
        else:
            source, command, intervention = "none", None, False
        onset = intervention and not self._intervening
        offset = self._intervening and not intervention
        self._intervening = intervention
        if intervention:
            self._intervention_steps += 1
        return Selection(source, command, intervention, onset, offset)

    def _human_fresh(self, now_s: object, command: object, stamp_s: object) -> bool:
        now, stamp = as_time(now_s), as_time(stamp_s)
        if command is None or now is None or stamp is None:
            return False
        return math.fabs(now - stamp) <= self.human_timeout_s
