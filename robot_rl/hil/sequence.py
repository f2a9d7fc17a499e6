"""Sequence accounting of the human-in-the-loop stream (pure Python): losses, duplicates, reordering, restarts.

Every stream message carries `(run_id, seq)`: `seq` counts from 0 per policy-node run, and `run_id` changes when
the node restarts. From those two numbers alone the learner tells apart a lost message (a gap in `seq`), a
duplicate, a late one (it fills a gap after later messages arrived), and a restart (a `run_id` never seen). Only
"fresh" messages (the newest so far of the current run) may extend the learner's transitions; the rest are counted
and dropped (a late step cannot be spliced back: the transitions around it were already cut).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

SeqKind = Literal["first", "next", "gap", "restart", "duplicate", "late", "stale"]
"""What a message was: the tracker's first, the expected next one, the next after a gap, the first of a new run,
a duplicate, a late one filling a gap, or stale: too old to tell (beyond the reorder window), sent before the
tracker's first message, or from an earlier run."""

_FRESH: frozenset[str] = frozenset({"first", "next", "gap", "restart"})


@dataclass(frozen=True)
class SeqVerdict:
    """The tracker's judgement of one message."""

    kind: SeqKind
    """What the message was (see `SeqKind`)."""
    lost: int = 0
    """Messages found missing just before this one (a gap's size; for a restart, the new run's seqs below it)."""

    @property
    def fresh(self) -> bool:
        """The newest message of the current run so far: the one kind that may extend the transition stream."""
        return self.kind in _FRESH

    @property
    def breaks_stream(self) -> bool:
        """Something is missing or the node restarted before this message: nothing may straddle it."""
        return self.kind in ("gap", "restart")


class SequenceTracker:
    """Counts received, lost, duplicate, late and stale messages and node restarts from `(run_id, seq)`.

    Args:
        reorder_window: how many seqs behind the newest a missing one is remembered, so that a late arrival is
            told from a duplicate (older arrivals count as `stale`).
        remembered_runs: how many earlier run ids are remembered, so that a straggler from a run that already
            ended is `stale` rather than another restart.
    """

    def __init__(self, reorder_window: int = 1024, remembered_runs: int = 8) -> None:
        if reorder_window < 1 or remembered_runs < 1:
            raise ValueError(
                f"reorder_window and remembered_runs must be >= 1, got {reorder_window}, {remembered_runs}"
            )
        self.reorder_window = reorder_window
        self.run_id: str | None = None
        """The current run (None before the first message)."""
        self.newest_seq = -1
        """Highest seq received in the current run (-1 before the first message)."""
        self._missing: set[int] = set()
        self._floor = 0  # lowest seq of the current run this tracker could have received
        self._old_runs: deque[str] = deque(maxlen=remembered_runs)
        self._counts = {
            "received": 0,
            "fresh": 0,
            "lost": 0,
            "duplicates": 0,
            "late": 0,
            "stale": 0,
            "restarts": 0,
            "skipped_before_join": 0,
        }

    def observe(self, run_id: str, seq: int) -> SeqVerdict:
        """Account for one message and say what it was.

        Raises:
            ValueError: `seq` is negative (the wire decoder never yields one).
        """
        if seq < 0:
            raise ValueError(f"seq must be >= 0, got {seq}")
        c = self._counts
        c["received"] += 1
        verdict = self._judge(run_id, seq)
        if verdict.fresh:
            c["fresh"] += 1
        return verdict

    def _judge(self, run_id: str, seq: int) -> SeqVerdict:
        c = self._counts
        if self.run_id is None:
            # Joined a run already going: what came before is not a loss of ours.
            c["skipped_before_join"] += seq
            self._begin(run_id, seq)
            self._floor = seq
            return SeqVerdict("first")
        if run_id != self.run_id:
            if run_id in self._old_runs:
                c["stale"] += 1
                return SeqVerdict("stale")
            # A new run starts at seq 0; anything below its first seq seen was lost (we were listening).
            # Messages lost at the end of the previous run cannot be known: it had no successor to reveal them.
            c["restarts"] += 1
            c["lost"] += seq
            self._old_runs.append(self.run_id)
            self._begin(run_id, seq)
            self._floor = 0
            self._remember_missing(0, seq)
            return SeqVerdict("restart", lost=seq)
        if seq == self.newest_seq + 1:
            self.newest_seq = seq
            self._forget_old()
            return SeqVerdict("next")
        if seq > self.newest_seq:
            lost = seq - self.newest_seq - 1
            c["lost"] += lost
            self._remember_missing(self.newest_seq + 1, seq)
            self.newest_seq = seq
            self._forget_old()
            return SeqVerdict("gap", lost=lost)
        if seq in self._missing:
            # Counted lost when the gap opened; it was only late (reordered), so it is no longer missing.
            self._missing.discard(seq)
            c["lost"] -= 1
            c["late"] += 1
            return SeqVerdict("late")
        if seq < self._floor or seq < self.newest_seq - self.reorder_window:
            # Sent before we joined, or too old to tell a duplicate from a late one.
            c["stale"] += 1
            return SeqVerdict("stale")
        c["duplicates"] += 1
        return SeqVerdict("duplicate")

    def _begin(self, run_id: str, seq: int) -> None:
        self.run_id = run_id
        self.newest_seq = seq
        self._missing.clear()

    def _remember_missing(self, start: int, stop: int) -> None:
        # Bounded: a corrupt or huge jump must not allocate one entry per missing seq.
        self._missing.update(range(max(start, stop - self.reorder_window), stop))

    def _forget_old(self) -> None:
        horizon = self.newest_seq - self.reorder_window
        if self._missing and min(self._missing) < horizon:
            self._missing = {s for s in self._missing if s >= horizon}

    def stats(self) -> dict[str, int]:
        """Counters for /diagnostics: received, fresh, lost (still missing), duplicates, late, stale, restarts,
        skipped_before_join (seqs the run had sent before this tracker's first message)."""
        return dict(self._counts)
