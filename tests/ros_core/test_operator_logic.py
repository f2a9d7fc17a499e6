"""The scripted operator that behaves like a person (issue 15), without ROS: a fake clock at 16 Hz (exact in binary,
so the time limits fall on known ticks)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from ros_nodes.core.operator_logic import OperatorConfig, OperatorDecision, OperatorLogic, drift

DT = 0.0625
LOW, HIGH = -np.full(3, 2.0), np.full(3, 2.0)  # half-range 2: a difference of 1 everywhere is drift 0.5
EXPERT = np.array([0.5, -0.5, 0.2])
ON_TRACK = EXPERT + 0.1  # drift 0.05
OFF_TRACK = EXPERT + 1.0  # drift 0.5
CFG = OperatorConfig(
    engage_threshold=0.3,
    engage_ticks=3,
    release_threshold=0.1,
    release_ticks=2,
    min_takeover_s=0.25,
    max_takeover_s=2.0,
    cooldown_s=0.5,
    max_interventions_per_episode=2,
    stream_timeout_s=0.2,
)


class Clock:
    """Steps the logic at 16 Hz and keeps every decision."""

    def __init__(self, cfg: OperatorConfig = CFG) -> None:
        self.op = OperatorLogic(cfg, LOW, HIGH)
        self.t = 0.0
        self.decisions: list[OperatorDecision] = []

    def step(self, robot: Any = None, *, n: int = 1, **kw: Any) -> OperatorDecision:
        expert = kw.pop("expert", EXPERT)
        for _ in range(n):
            self.t += DT
            self.decisions.append(self.op.step(self.t, expert, robot, **kw))
        return self.decisions[-1]

    def engage(self) -> None:
        for _ in range(CFG.engage_ticks):
            d = self.step(OFF_TRACK)
        assert d.engaged


def test_drift_is_the_rms_of_range_normalized_differences() -> None:
    assert drift(OFF_TRACK, EXPERT, (HIGH - LOW) / 2) == pytest.approx(0.5)
    assert drift(EXPERT, EXPERT, (HIGH - LOW) / 2) == 0.0


def test_engages_after_n_ticks_of_drift_not_before_and_drives_with_the_expert() -> None:
    c = Clock()
    for _ in range(CFG.engage_ticks - 1):
        d = c.step(OFF_TRACK)
        assert not d.engaged and d.command is None and d.drift == pytest.approx(0.5)
    c.step(ON_TRACK)  # one good tick breaks the streak
    for _ in range(CFG.engage_ticks - 1):
        assert not c.step(OFF_TRACK).engaged
    d = c.step(OFF_TRACK)
    assert d.engaged and d.started is not None
    np.testing.assert_array_equal(d.command, EXPERT)
    assert d.started.reason == "drift 0.50 > 0.30 for 3 ticks"
    assert d.started.start_s == pytest.approx(c.t) and d.started.start_drift == pytest.approx(0.5)
    # the expert's command is followed, whatever it is, tick by tick
    other = np.array([0.1, 0.2, 0.3])
    d = c.step(None, expert=other)
    assert d.engaged and d.started is None
    np.testing.assert_array_equal(d.command, other)


def test_no_observed_robot_command_is_no_evidence() -> None:
    c = Clock()
    for _ in range(10):
        assert not c.step(None).engaged
    c.step(OFF_TRACK, n=CFG.engage_ticks - 1)
    c.step(None)
    assert not c.step(OFF_TRACK).engaged  # the streak restarted


def test_release_needs_min_takeover_then_release_ticks_of_recovery() -> None:
    c = Clock()
    c.engage()
    # success right away: counted, but the minimum takeover (0.25 s = 4 ticks) holds it
    for _ in range(3):
        assert c.step(OFF_TRACK, success=True).engaged
    d = c.step(OFF_TRACK, success=True)
    assert not d.engaged and d.ended is not None  # released at the minimum: recovered long enough already
    rec = d.ended
    assert rec.end_reason == "recovered: task success for 4 ticks" and rec.duration_s == pytest.approx(0.25)
    assert rec.ticks == 5 and c.op.records == [rec] and c.op.stats.releases == {"recovered": 1}
    # after the minimum, exactly release_ticks of recovery
    c2 = Clock(replace(CFG, cooldown_s=0.0))
    c2.engage()
    c2.step(OFF_TRACK, n=10, success=False)
    assert c2.step(OFF_TRACK, success=True).engaged
    assert c2.step(OFF_TRACK, success=None).engaged  # unknown is not success: the count restarts
    assert c2.step(OFF_TRACK, success=True).engaged
    d = c2.step(OFF_TRACK, success=True)
    assert d.ended is not None and d.ended.end_reason == "recovered: task success for 2 ticks"


def test_release_hysteresis_on_the_policys_proposal() -> None:
    c = Clock()
    c.engage()
    c.step(None, n=6)  # past the minimum takeover, nothing observed: stays engaged
    assert c.op.engaged
    # between the thresholds (drift 0.2): not recovered, not a new takeover either
    between = EXPERT + 0.4
    for _ in range(5):
        assert c.step(None, policy=between).engaged
    assert c.step(None, policy=ON_TRACK).engaged  # one recovered tick is not enough
    assert c.step(None, policy=between).engaged  # and a relapse restarts the count
    assert c.step(None, policy=ON_TRACK).engaged
    d = c.step(None, policy=ON_TRACK)
    assert not d.engaged and d.ended is not None
    assert d.ended.end_reason == "recovered: policy drift 0.05 < 0.10 for 2 ticks"


def test_success_counts_only_when_configured() -> None:
    c = Clock(replace(CFG, release_on_success=False))
    c.engage()
    for _ in range(20):
        assert c.step(None, success=True).engaged


def test_max_takeover_releases_in_step_and_in_check() -> None:
    c = Clock()
    c.engage()
    start = c.t
    n = round(CFG.max_takeover_s / DT)  # 32 ticks
    for _ in range(n - 1):
        assert c.step(OFF_TRACK).engaged
    d = c.step(OFF_TRACK)
    assert not d.engaged and d.ended is not None
    assert d.ended.end_reason == "max takeover 2 s" and d.ended.duration_s == CFG.max_takeover_s
    assert d.ended.start_s == start and d.ended.ticks == n + 1
    c2 = Clock()
    c2.engage()
    c2.step(OFF_TRACK, n=10)
    d = c2.op.check(c2.t + 0.1)  # samples fresh (0.1 s < 0.2 s), takeover 0.69 s: still on
    assert d.engaged and d.ended is None
    np.testing.assert_array_equal(d.command, EXPERT)
    d = c2.op.check(c2.t + 1.5)  # over the limit (and stale): released with the first reason that applies
    assert not d.engaged and d.ended is not None and d.ended.end_reason.startswith("expert stale")
    c3 = Clock(replace(CFG, stream_timeout_s=5.0))
    c3.engage()
    d = c3.op.check(c3.t + CFG.max_takeover_s)  # between samples, the clock alone ends an over-long takeover
    assert d.ended is not None and d.ended.end_reason == "max takeover 2 s"


def test_cooldown_delays_the_next_takeover() -> None:
    c = Clock()
    c.engage()
    c.step(None, n=4, success=True)
    assert not c.op.engaged
    for _ in range(round(CFG.cooldown_s / DT) - 1):
        assert not c.step(OFF_TRACK).engaged
    assert c.op.stats.refused_cooldown > 0
    d = c.step(OFF_TRACK)  # the drift streak built up while cooling down: takes over at the cooldown's end
    assert d.engaged and d.started is not None and d.started.index == 1


def test_budget_per_episode_and_a_new_episode_restores_it() -> None:
    c = Clock(replace(CFG, cooldown_s=0.0))
    for _ in range(CFG.max_interventions_per_episode):
        c.engage()
        c.step(None, n=4, success=True)
        assert not c.op.engaged
    for _ in range(20):
        assert not c.step(OFF_TRACK).engaged
    assert c.op.stats.refused_budget == 1  # one refusal per drift streak, not per tick
    assert c.op.interventions_this_episode == 2
    assert c.op.new_episode(c.t) is None
    c.engage()
    # the episode's end closes a takeover, with the record saying so
    ended = c.op.new_episode(c.t + DT)
    assert ended is not None and ended.end_reason == "episode ended" and ended.episode == 1
    assert [r.episode for r in c.op.records] == [0, 0, 1] and c.op.stats.releases["episode_end"] == 1


def test_unlimited_budget() -> None:
    c = Clock(replace(CFG, cooldown_s=0.0, max_interventions_per_episode=0))
    for _ in range(5):
        c.engage()
        c.step(None, n=4, success=True)
    assert len(c.op.records) == 5


@pytest.mark.parametrize(
    "bad, kind",
    [
        (np.array([np.nan, 0.0, 0.0]), "non_finite"),
        (np.array([np.inf, 0.0, 0.0]), "non_finite"),
        (np.zeros(2), "shape"),
        (np.zeros((3, 1)), "shape"),
        (["a", "b", "c"], "malformed"),
    ],
)
def test_nan_robot_commands_never_engage_and_are_counted(bad: Any, kind: str) -> None:
    c = Clock()
    for _ in range(10):
        d = c.step(bad)
        assert not d.engaged and d.drift is None
    assert c.op.stats.rejected == {f"robot/{kind}": 10}
    assert c.op.stats.last_reject_reason


def test_a_nan_expert_never_drives_it_releases_and_is_counted() -> None:
    c = Clock()
    for _ in range(10):
        assert not c.step(OFF_TRACK, expert=np.array([np.nan, 0.0, 0.0])).engaged
    assert c.op.stats.rejected == {"expert/non_finite": 10}
    c.engage()
    d = c.step(OFF_TRACK, expert=np.array([0.0, np.inf, 0.0]))
    assert not d.engaged and d.command is None and d.ended is not None
    assert d.ended.end_reason.startswith("expert rejected: expert has non-finite values")
    assert all(x.command is None or np.isfinite(x.command).all() for x in c.decisions)


def test_a_nan_policy_proposal_is_rejected_and_the_robot_command_used() -> None:
    c = Clock()
    for _ in range(CFG.engage_ticks):
        d = c.step(OFF_TRACK, policy=np.full(3, np.nan))
    assert d.engaged and c.op.stats.rejected == {"policy/non_finite": CFG.engage_ticks}


def test_a_stale_expert_stream_releases_at_once_and_is_counted_once() -> None:
    c = Clock()
    assert c.op.expert_stale  # nothing yet
    c.engage()
    assert not c.op.check(c.t + 0.15).ended  # within the stream timeout
    d = c.op.check(c.t + 0.25)
    assert not d.engaged and d.command is None and d.ended is not None
    assert d.ended.end_reason == "expert stale (0.250 s > 0.2 s)"
    assert d.ended.end_s == pytest.approx(c.t + 0.25)  # the record ends when the operator let go
    for k in range(5):
        c.op.check(c.t + 0.3 + k * 0.05)
    assert c.op.stats.stale == 1 and c.op.expert_stale and c.op.stats.releases == {"expert_stale": 1}
    c.t += 0.6
    c.step(OFF_TRACK)
    assert not c.op.expert_stale


def test_records_serialize_with_duration() -> None:
    c = Clock()
    c.engage()
    c.step(None, n=4, success=True)
    data = c.op.records[0].to_json()
    assert set(data) == {
        "index", "episode", "start_s", "reason", "start_drift", "end_s", "end_reason", "ticks", "duration_s"
    }  # fmt: skip
    assert data["duration_s"] == pytest.approx(data["end_s"] - data["start_s"])
    assert c.op.current is None


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"engage_threshold": 0.0}, "engage_threshold must be finite and > 0"),
        ({"engage_threshold": float("nan")}, "engage_threshold"),
        ({"release_threshold": 0.5}, "release_threshold .* must be <= engage_threshold"),
        ({"engage_ticks": 0}, "engage_ticks must be an integer >= 1"),
        ({"release_ticks": 1.5}, "release_ticks"),
        ({"min_takeover_s": -1.0}, "min_takeover_s must be finite and >= 0"),
        ({"max_takeover_s": 0.1}, "max_takeover_s .* must be >= min_takeover_s"),
        ({"cooldown_s": float("inf")}, "cooldown_s"),
        ({"max_interventions_per_episode": -1}, "max_interventions_per_episode"),
        ({"stream_timeout_s": 0.0}, "stream_timeout_s"),
    ],
)
def test_config_refuses_nonsense_with_the_field_named(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OperatorConfig(**changes)


def test_from_params_accepts_ints_and_refuses_unknown_names() -> None:
    cfg = OperatorConfig.from_params({"engage_threshold": 1, "cooldown_s": 2})
    assert cfg.engage_threshold == 1.0 and isinstance(cfg.cooldown_s, float)
    with pytest.raises(ValueError, match=r"unknown operator parameter.*engage_treshold"):
        OperatorConfig.from_params({"engage_treshold": 0.3})


@pytest.mark.parametrize("low, high", [([0.0], [0.0, 1.0]), ([], []), ([0.0, np.nan], [1.0, 1.0]), ([1.0], [1.0])])
def test_bounds_are_checked(low: list[float], high: list[float]) -> None:
    with pytest.raises(ValueError, match="command bounds"):
        OperatorLogic(CFG, low, high)
