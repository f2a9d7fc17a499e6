"""The policy node's view of the learner beside it (ROS-free): alive or gone, and what it last said.

The learner publishes a heartbeat (its status as JSON, once a second) with a liveliness lease; the node's
subscription gets a liveliness event when the lease lapses (the learner died or hung) and when it comes back.
Nothing in the control loop depends on the learner — the robot keeps the bundle it runs — but an operator must see
that learning stopped: the `/diagnostics` entry turns WARN while the learner is gone, with how long and how often.
"""

from __future__ import annotations

import json
import math
from typing import Any

from robot_rl.safety.diagnostics import OK, WARN, DiagnosticEntry


class LearnerWatch:
    """Alive / gone from liveliness events, the last status from heartbeats. Times in s on the node's clock."""

    def __init__(self) -> None:
        self.alive = False
        self.seen = False
        """A heartbeat or an alive event arrived at least once."""
        self.lost = 0
        """Times the learner's liveliness lapsed after it had been alive."""
        self.since_s = math.nan
        """When `alive` last changed."""
        self.status: dict[str, Any] = {}
        """The learner's last heartbeat (updates, episodes, exports, errors, ...)."""
        self.malformed = 0

    def on_liveliness(self, alive: bool, now_s: float) -> None:
        """A liveliness change of the heartbeat's writer (`alive_count > 0`)."""
        if alive == self.alive:
            return
        if self.alive and not alive:
            self.lost += 1
        self.alive, self.since_s = alive, now_s
        self.seen = self.seen or alive

    def on_status(self, text: str, now_s: float) -> None:
        """A heartbeat: a JSON object; anything else is counted and ignored."""
        try:
            status = json.loads(text)
        except ValueError:
            status = None
        if not isinstance(status, dict):
            self.malformed += 1
            return
        self.status = status
        if not self.alive:
            self.on_liveliness(True, now_s)

    def entry(self, now_s: float) -> DiagnosticEntry:
        """`policy_node/learner`: OK while alive; WARN while gone (the robot keeps running its bundle)."""
        values = {"learner/alive": str(self.alive), "learner/lost": str(self.lost)}
        values["learner/malformed"] = str(self.malformed)
        values.update({f"learner/{k}": str(v) for k, v in self.status.items() if not isinstance(v, dict | list)})
        if not self.seen:
            return DiagnosticEntry("learner", WARN, "no learner heard yet (its heartbeat topic is silent)", values)
        if not self.alive:
            gone = now_s - self.since_s
            return DiagnosticEntry(
                "learner",
                WARN,
                f"learner gone for {gone:.1f} s (liveliness lapsed; {self.lost} times so far): the robot keeps "
                "running its current bundle, nothing new is learned",
                values,
            )
        summary = ", ".join(f"{k} {self.status[k]}" for k in ("updates", "episodes", "exports") if k in self.status)
        return DiagnosticEntry("learner", OK, f"learner alive: {summary or 'no figures yet'}", values)
