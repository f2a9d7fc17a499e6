"""Episode bookkeeping without ROS: where episodes end, how (terminated vs truncated), and what gets recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robot_rl.data.step_record import StepRecord
from ros_nodes.core.control_step import ControlStep, HumanInput
from ros_nodes.core.deployment import build_deployment
from ros_nodes.core.episode_session import (
    EpisodeEnd,
    EpisodeSession,
    EpisodeStart,
    SessionEvent,
    write_events,
)

CART_JOINTS = ["slider_to_cart", "cart_to_pole"]
PERIOD = 0.02


@pytest.fixture
def control(cartpole_lqr_bundle: Path) -> ControlStep:
    return build_deployment({"bundle_dir": str(cartpole_lqr_bundle)}).step


def _run(session: EpisodeSession, n: int, t0: float = 0.0, human: HumanInput | None = None) -> list[SessionEvent]:
    """`n` ticks with fresh joint states; returns every event in order."""
    events: list[SessionEvent] = []
    for i in range(n):
        t = t0 + i * PERIOD
        session.step.assembler.update_joint_state(CART_JOINTS, [0.0, 0.05], [0.0, 0.0], arrival_s=t)
        events += session.tick(t, human).events
    return events


def _steps(events: list[SessionEvent]) -> list[StepRecord]:
    return [e for e in events if isinstance(e, StepRecord)]


def _ends(events: list[SessionEvent]) -> list[EpisodeEnd]:
    return [e for e in events if isinstance(e, EpisodeEnd)]


def test_each_tick_is_written_once_one_tick_later(control: ControlStep) -> None:
    session = EpisodeSession(control)
    assert session.begin() == (EpisodeStart(0),) and session.begin() == ()
    first = session.tick(0.0)
    assert first.events == () and first.record.step == 0  # held: its episode-end flags are not known yet
    events = _run(session, 4, t0=PERIOD)
    written = _steps(events)
    assert [r.step for r in written] == [0, 1, 2, 3] and written[0] is first.record
    assert not any(r.terminated or r.truncated for r in written)
    assert written[0].is_success is None and written[0].reward_terms == {"rlif": 0.0, "success": 0.0}
    session.on_success(True)  # forwarded to the record, so the reward hooks see it
    out = session.tick(5 * PERIOD)
    assert out.record.is_success is True and out.record.reward_terms["success"] == 1.0
    closing = session.finish()
    (last,) = _steps(list(closing))
    assert last.step == 5 and last.truncated and not last.terminated  # an operator stop is a cut, not terminal
    (end,) = _ends(list(closing))
    assert (end.steps, end.terminated, end.truncated, end.ended_by) == (6, False, True, "halt")
    assert session.finish() == () and not session.active
    with pytest.raises(RuntimeError, match="begin"):
        session.tick(1.0)


@pytest.mark.parametrize("done_first", [True, False])
def test_the_robots_terminal_state_ends_the_recorded_episode_as_terminated(
    control: ControlStep, done_first: bool
) -> None:
    session = EpisodeSession(control)
    session.begin()
    _run(session, 3)
    # The robot executed step 2's command and the task ended there: both signals arrive before the next tick, in
    # either order (separate topics are not ordered).
    if done_first:
        session.on_episode_done()
        session.on_terminated(True)
    else:
        session.on_terminated(True)
        session.on_episode_done()
    out = session.tick(3 * PERIOD)
    steps, ends = _steps(list(out.events)), _ends(list(out.events))
    assert [(r.step, r.terminated, r.truncated) for r in steps] == [(2, True, False)]
    assert [(e.terminated, e.truncated, e.steps, e.ended_by) for e in ends] == [(True, False, 3, "robot")]
    assert out.events[-1] == EpisodeStart(1) and out.record.step == 0  # the next episode starts at this tick
    # the latch is per episode: the next episode ends by the time limit, a truncation
    _run(session, 2, t0=4 * PERIOD)
    session.on_terminated(False)
    session.on_episode_done()
    out = session.tick(10 * PERIOD)
    (last,) = _steps(list(out.events))
    assert (last.terminated, last.truncated) == (False, True)
    assert [e.terminated for e in session.episodes] == [True, False]


def test_episode_done_without_terminal_is_a_truncation_and_success_is_kept(control: ControlStep) -> None:
    session = EpisodeSession(control)
    session.begin()
    _run(session, 2)
    session.on_success(True)
    session.on_episode_done()
    out = session.tick(2 * PERIOD)
    (end,) = _ends(list(out.events))
    assert end.truncated and not end.terminated and end.is_success is True
    assert end.metadata() == {"intervention_steps": "0", "ended_by": "robot", "is_success": "true"}
    assert session.is_success is None  # the new episode has no success signal yet
    assert session.successes == [True]


def test_step_limit_truncates_at_once_and_rolls_over(control: ControlStep) -> None:
    session = EpisodeSession(control, max_steps=3)
    session.begin()
    events = _run(session, 6)
    steps = _steps(events)
    # 6 ticks: two full episodes written at once (the limit is known at the tick itself), nothing held
    assert [(r.step, r.truncated) for r in steps] == [(0, False), (1, False), (2, True)] * 2
    assert [e.ended_by for e in _ends(events)] == ["max_steps", "max_steps"]
    assert [e.index for e in events if isinstance(e, EpisodeStart)] == [1, 2]
    # the robot's own end of the episode the limit already closed arrives late: it must not close the next one
    session.on_episode_done()
    session.on_terminated(True)
    assert _ends(_run(session, 2, t0=1.0)) == []
    with pytest.raises(ValueError, match="max_steps"):
        EpisodeSession(control, max_steps=-1)


def test_interventions_are_counted_per_episode_and_in_total(control: ControlStep) -> None:
    session = EpisodeSession(control)
    session.begin()
    _run(session, 2)
    for i in range(3):
        t = (2 + i) * PERIOD
        session.step.assembler.update_joint_state(CART_JOINTS, [0.0, 0.05], [0.0, 0.0], arrival_s=t)
        session.tick(t, HumanInput(True, np.array([1.0]), t))
    assert session.intervention_steps == 3
    closing = session.cut()  # the ~/end_episode service: close this one, start the next
    (end,) = _ends(list(closing))
    assert end.intervention_steps == 3 and end.ended_by == "service" and closing[-1] == EpisodeStart(1)
    _run(session, 2, t0=1.0)
    (end,) = _ends(list(session.finish()))
    assert end.intervention_steps == 0 and session.intervention_steps == 3


def test_the_recorded_file_ends_with_the_terminal_step(control: ControlStep, tmp_path: Path) -> None:
    pytest.importorskip("mcap")
    from robot_rl.data.episode_record import RecorderConfig
    from robot_rl.data.mcap_reader import list_episodes, read_episode
    from robot_rl.data.mcap_writer import EpisodeRecorder

    session = EpisodeSession(control)
    with EpisodeRecorder(RecorderConfig(directory=tmp_path)) as recorder:
        write_events(recorder, session.begin(), {"robot": "cartpole"}, wait=True)
        for i in range(4):
            t = i * PERIOD
            session.step.assembler.update_joint_state(CART_JOINTS, [0.0, 0.05], [0.0, 0.0], arrival_s=t)
            write_events(recorder, session.tick(t).events, {"robot": "cartpole"}, wait=False)
        session.on_terminated(True)
        session.on_episode_done()
        write_events(recorder, session.tick(4 * PERIOD).events, {"robot": "cartpole"}, wait=False)
        write_events(recorder, session.finish(), {"robot": "cartpole"}, wait=True)
    first, second = (read_episode(p) for p in list_episodes(tmp_path))
    assert first.steps.tolist() == [0, 1, 2, 3]
    assert first.terminated.tolist() == [False, False, False, True] and not first.truncated.any()
    assert first.metadata["terminated"] == "true" and first.metadata["ended_by"] == "robot"
    assert second.truncated.tolist() == [True] and second.metadata["truncated"] == "true"


def test_rlif_penalty_is_credited_to_the_policy_step_that_led_to_the_takeover(control: ControlStep) -> None:
    """The onset step's executed action is the human's; RLIF's penalty belongs to the policy's action before it."""
    session = EpisodeSession(control)
    session.begin()
    events: list[SessionEvent] = []
    for i in range(8):
        t = i * PERIOD
        engaged = i >= 5
        human = HumanInput(engaged, np.zeros(1) if engaged else None, t if engaged else None)
        session.step.assembler.update_joint_state(CART_JOINTS, [0.0, 0.05], [0.0, 0.0], arrival_s=t)
        events += session.tick(t, human).events
    written = _steps(events)
    rlif = [r.reward_terms["rlif"] for r in written]
    assert written[5].intervention_onset and not written[4].intervention
    assert rlif[4] == -1.0 and rlif[5] == 0.0 and sum(rlif) == -1.0  # on the policy's step, counted once
    assert written[4].source == "policy" and written[5].source == "human"
