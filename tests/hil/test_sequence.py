"""Sequence accounting: what was lost, repeated, late, stale, and when the node restarted."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.hil.sequence import SequenceTracker


def _kinds(tracker: SequenceTracker, msgs: list[tuple[str, int]]) -> list[str]:
    return [tracker.observe(run, seq).kind for run, seq in msgs]


def test_in_order_stream_counts_nothing_lost() -> None:
    t = SequenceTracker()
    assert _kinds(t, [("a", s) for s in range(5)]) == ["first", "next", "next", "next", "next"]
    assert t.stats() == {
        "received": 5,
        "fresh": 5,
        "lost": 0,
        "duplicates": 0,
        "late": 0,
        "stale": 0,
        "restarts": 0,
        "skipped_before_join": 0,
    }


def test_gap_duplicate_and_late_arrival() -> None:
    t = SequenceTracker()
    kinds = _kinds(t, [("a", 0), ("a", 1), ("a", 4), ("a", 4), ("a", 1), ("a", 2), ("a", 5), ("a", 2)])
    assert kinds == ["first", "next", "gap", "duplicate", "duplicate", "late", "next", "duplicate"]
    s = t.stats()
    # 2 and 3 went missing at the gap; 2 turned up late, so only 3 is still lost.
    assert (s["lost"], s["late"], s["duplicates"], s["fresh"], s["received"]) == (1, 1, 3, 4, 8)
    verdict = SequenceTracker().observe("b", 0)
    assert verdict.fresh and not verdict.breaks_stream


def test_gap_verdict_reports_its_size() -> None:
    t = SequenceTracker()
    t.observe("a", 0)
    v = t.observe("a", 10)
    assert (v.kind, v.lost, v.fresh, v.breaks_stream) == ("gap", 9, True, True)


def test_restart_is_a_new_run_id_and_old_stragglers_are_stale() -> None:
    t = SequenceTracker()
    _kinds(t, [("a", 0), ("a", 1), ("a", 2)])
    v = t.observe("b", 0)
    assert (v.kind, v.lost, v.breaks_stream) == ("restart", 0, True)
    assert t.observe("a", 3).kind == "stale"  # the old run's last words, after the restart
    v = t.observe("c", 3)  # the new run's first three messages never arrived
    assert (v.kind, v.lost) == ("restart", 3)
    assert t.observe("c", 1).kind == "late"
    s = t.stats()
    assert (s["restarts"], s["stale"], s["lost"], s["late"]) == (2, 1, 2, 1)


def test_joining_a_running_node_is_not_a_loss() -> None:
    t = SequenceTracker()
    assert t.observe("a", 1000).kind == "first"
    assert t.observe("a", 1001).kind == "next"
    assert t.observe("a", 10).kind == "stale"  # beyond the window: cannot tell a duplicate from a late one
    assert (t.stats()["lost"], t.stats()["skipped_before_join"]) == (0, 1000)


def test_window_bounds_memory_for_a_huge_jump() -> None:
    t = SequenceTracker(reorder_window=16)
    t.observe("a", 0)
    assert t.observe("a", 2**62).lost == 2**62 - 1
    assert len(t._missing) <= 16
    assert t.observe("a", 2**62 - 1).kind == "late"
    assert t.observe("a", 5).kind == "stale"


def test_random_reorderings_keep_the_books_balanced() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(5, 60))
        sent = list(range(n))
        kept = [s for s in sent if rng.random() > 0.2]
        arrivals = kept + [int(s) for s in rng.choice(kept, size=len(kept) // 4)] if kept else []
        # Swap some neighbours: modest reordering, as a network does.
        for i in range(len(arrivals) - 1):
            if rng.random() < 0.2:
                arrivals[i], arrivals[i + 1] = arrivals[i + 1], arrivals[i]
        t = SequenceTracker()
        for s in arrivals:
            t.observe("r", s)
        st = t.stats()
        if not arrivals:
            continue
        first = arrivals[0]
        distinct_after_join = len({s for s in kept if s >= first})
        late_before_join = len({s for s in kept if s < first})
        # Every arrival is classified exactly once.
        assert st["received"] == len(arrivals)
        assert st["fresh"] + st["duplicates"] + st["late"] + st["stale"] == st["received"]
        # What is still missing is exactly what was never delivered (between the first seen and the newest).
        newest = max(arrivals)
        assert st["lost"] == len(set(range(first, newest + 1)) - set(kept))
        assert st["fresh"] + st["late"] == distinct_after_join
        assert st["stale"] + st["duplicates"] >= late_before_join


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="reorder_window"):
        SequenceTracker(reorder_window=0)
    with pytest.raises(ValueError, match="seq must be >= 0"):
        SequenceTracker().observe("a", -1)
