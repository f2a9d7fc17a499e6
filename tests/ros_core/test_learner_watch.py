"""The policy node's view of the learner: alive from heartbeats and liveliness events, WARN while it is gone (how
long, how often), malformed heartbeats counted, never raised."""

from __future__ import annotations

from robot_rl.safety.diagnostics import OK, WARN
from ros_nodes.core.learner_watch import LearnerWatch


def test_alive_gone_and_back_with_the_reasons_on_diagnostics() -> None:
    w = LearnerWatch()
    assert w.entry(0.0).level == WARN and "no learner heard" in w.entry(0.0).message
    w.on_status('{"updates": 120, "episodes": 7, "exports": 1}', 1.0)
    e = w.entry(1.5)
    assert w.alive and e.level == OK and "updates 120" in e.message and e.values["learner/episodes"] == "7"
    w.on_liveliness(False, 10.0)
    e = w.entry(13.0)
    assert e.level == WARN and "gone for 3.0 s" in e.message and w.lost == 1
    w.on_liveliness(False, 11.0)  # a repeated event changes nothing
    assert w.lost == 1 and w.since_s == 10.0
    w.on_liveliness(True, 20.0)
    assert w.entry(21.0).level == OK and w.lost == 1


def test_malformed_heartbeats_are_counted_and_ignored() -> None:
    w = LearnerWatch()
    for bad in ("not json", "[1, 2]", "null", '"text"'):
        w.on_status(bad, 0.0)
    assert w.malformed == 4 and not w.alive and w.status == {}
    w.on_status('{"updates": 1}', 1.0)
    assert w.alive and w.entry(1.0).values["learner/malformed"] == "4"
