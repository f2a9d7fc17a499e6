"""Stream bytes → whole training episodes: the same episodes as the recorder's files, breaks never straddled,
duplicates and late messages ignored, malformed bytes counted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_rl.data.datasets.episode import Episode
from robot_rl.data.datasets.sources.mcap import recording_episodes
from robot_rl.data.episode_record import RecorderConfig
from robot_rl.data.mcap_reader import list_episodes, read_episode
from robot_rl.data.mcap_writer import EpisodeRecorder
from robot_rl.data.step_record import StepRecord
from robot_rl.hil.episodes import AssembledEpisode
from robot_rl.hil.receiver import StreamReceiver
from robot_rl.hil.sender import StreamSender
from robot_rl.hil.wire import EpisodeEndInfo, StreamMessage, encode
from ros_nodes.core.episode_session import EpisodeEnd, EpisodeSession, SessionEvent, write_events

OBS_DIM, ACT_DIM = 3, 2
LOW, HIGH = np.array([-1.0, -2.0]), np.array([1.0, 0.5])
SHA = "ab" * 32


# ------------------------------------------------------------------------------------------ hand-built steps


def _msg(
    seq: int,
    step: int,
    *,
    episode: int = 0,
    run: str = "r",
    obs: Any = None,
    terminated: bool = False,
    truncated: bool = False,
    intervention: bool = False,
    is_success: bool | None = None,
    end_success: bool | None = None,
    sha: str = SHA,
) -> bytes:
    """One encoded step; a terminated/truncated one carries an end record with `end_success`."""
    rec = StepRecord(
        step=step,
        stamp_ns=seq * 20_000_000,
        observation=np.full(OBS_DIM, float(100 * episode + step)) if obs is None else np.asarray(obs, np.float64),
        policy_action=np.full(ACT_DIM, np.nan) if intervention else np.zeros(ACT_DIM),
        executed_action=np.full(ACT_DIM, 0.25),
        reward_terms={"b": 0.5, "a": float(step)},
        intervention=intervention,
        terminated=terminated,
        truncated=truncated,
        source="human" if intervention else "policy",
        is_success=is_success,
    )
    end = None
    if terminated or truncated:
        end = EpisodeEndInfo(step + 1, terminated, truncated, end_success, int(intervention), "robot")
    return encode(StreamMessage(run, seq, episode, sha, rec, end))


def _push_all(rx: StreamReceiver, msgs: list[bytes]) -> list[AssembledEpisode]:
    out: list[AssembledEpisode] = []
    for m in msgs:
        out += rx.push(m)
    return out


def _summary(closed: list[AssembledEpisode]) -> list[tuple[Any, ...]]:
    """(run, episode, complete, [(first step, transitions, terminated, truncated) per training piece])."""

    def pieces(a: AssembledEpisode) -> list[tuple[int, int, bool, bool]]:
        return [(e.metadata["first_step"], len(e), e.terminated, e.truncated) for e in a.episodes]

    return [(a.run_id, a.episode, a.complete, pieces(a)) for a in closed]


def test_terminated_end_is_kept_and_success_comes_from_the_end_record() -> None:
    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    # The success signal arrived after the last tick: only the end record knows it.
    out = _push_all(rx, [_msg(0, 0), _msg(1, 1), _msg(2, 2, terminated=True, end_success=True)])
    assert _summary(out) == [("r", 0, True, [(0, 3, True, False)])]
    (ep,) = out[0].episodes
    assert np.array_equal(ep.observations[-1], ep.observations[-2])  # never bootstrapped: a copy of o_T
    assert np.allclose(ep.rewards, [0.5, 1.5, 2.5]) and ep.success and out[0].success
    assert out[0].bundle_sha256 == SHA and out[0].steps == 3
    assert rx.flush() == []
    s = rx.stats()
    assert (s["steps"], s["transitions"], s["steps_dropped"], s["episodes_complete"]) == (3, 3, 0, 1)


def test_truncated_end_drops_the_step_without_a_next_observation() -> None:
    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    out = _push_all(rx, [_msg(0, 0), _msg(1, 1), _msg(2, 2, truncated=True), _msg(3, 0, episode=1)])
    assert _summary(out) == [("r", 0, True, [(0, 2, False, True)])]
    (ep,) = out[0].episodes
    assert np.array_equal(ep.observations[-1], np.full(OBS_DIM, 2.0, np.float32))  # the real o_T, bootstrapped
    assert not out[0].success and rx.stats()["steps_dropped"] == 1


def test_a_lost_message_inside_an_episode_cuts_it_without_straddling() -> None:
    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    msgs = [_msg(s, s) for s in range(5)] + [_msg(5, 5, terminated=True, end_success=False)]
    out = _push_all(rx, msgs[:2] + msgs[3:])  # seq/step 2 lost
    # One streamed episode, two training pieces: step 1 has no next observation (it would be step 2's).
    assert _summary(out) == [("r", 0, True, [(0, 1, False, True), (3, 3, True, False)])]
    assert np.array_equal(out[0].episodes[0].observations[-1], np.full(OBS_DIM, 1.0, np.float32))
    s = rx.stats()
    assert (s["sequence/lost"], s["steps"], s["transitions"], s["steps_dropped"], s["forced_cuts"]) == (1, 5, 4, 1, 0)


def test_a_lost_episode_end_and_a_restart_close_the_open_episode_incomplete() -> None:
    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    # Episode 0's terminated last step (seq 3, with its end record) is lost; the next message is episode 1's.
    r = [_msg(0, 0), _msg(1, 1), _msg(2, 2, is_success=True), _msg(4, 0, episode=1), _msg(5, 1, episode=1)]
    # The node restarts mid-episode: a new run id, seq and episode from 0.
    r2 = [_msg(0, 0, run="r2"), _msg(1, 1, run="r2"), _msg(2, 2, run="r2", terminated=True, end_success=False)]
    out = _push_all(rx, r + r2)
    assert _summary(out) == [
        ("r", 0, False, [(0, 2, False, True)]),  # truncated, not terminated: the terminal flag never arrived
        ("r", 1, False, [(0, 1, False, True)]),
        ("r2", 0, True, [(0, 3, True, False)]),
    ]
    # Without an end record, success is the latest signal the steps carried.
    assert [a.success for a in out] == [True, False, False]
    s = rx.stats()
    assert (s["episodes_complete"], s["episodes_incomplete"], s["steps_dropped"]) == (1, 2, 2)
    assert (s["sequence/restarts"], s["sequence/lost"], s["forced_cuts"]) == (1, 1, 0)


def test_a_break_between_consecutive_step_numbers_is_cut_anyway() -> None:
    # A sender bug: seq 2 missing but the steps still count on. Never joined across the loss.
    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    out = _push_all(rx, [_msg(0, 0), _msg(1, 1), _msg(3, 2), _msg(4, 3, terminated=True)])
    assert _summary(out) == [("r", 0, False, [(0, 1, False, True)]), ("r", 0, True, [(2, 2, True, False)])]
    assert rx.stats()["forced_cuts"] == 1


def test_duplicates_and_late_messages_are_ignored() -> None:
    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    m = [_msg(s, s) for s in range(4)] + [_msg(4, 4, terminated=True)]
    out = _push_all(rx, [m[0], m[1], m[1], m[3], m[2], m[4], m[0]])  # a duplicate, 2 after 3, an old repeat
    assert _summary(out) == [("r", 0, True, [(0, 1, False, True), (3, 2, True, False)])]
    s = rx.stats()
    assert (s["sequence/duplicates"], s["sequence/late"], s["sequence/lost"], s["steps"]) == (2, 1, 0, 4)


def test_non_finite_observations_are_dropped_and_cut() -> None:
    nan = np.full(OBS_DIM, np.nan)
    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    msgs = [_msg(0, 0, obs=nan), _msg(1, 1, obs=nan), _msg(2, 2), _msg(3, 3), _msg(4, 4, obs=[0.0, np.inf, 0.0])]
    msgs += [_msg(5, 5), _msg(6, 6), _msg(7, 7, terminated=True)]
    (a,) = _push_all(rx, msgs)
    assert _summary([a]) == [("r", 0, True, [(2, 1, False, True), (5, 3, True, False)])]
    assert all(np.all(np.isfinite(e.observations)) for e in a.episodes)
    assert rx.stats()["steps_dropped"] == 8 - 4


def test_malformed_bytes_are_counted_never_raised_and_sizes_are_pinned() -> None:
    rx = StreamReceiver(None, None)  # sizes fixed by the first message that decodes
    good = _msg(0, 0)
    z = np.zeros(ACT_DIM)
    wrong_size = encode(StreamMessage("r", 1, 0, SHA, StepRecord(1, 0, np.zeros(OBS_DIM + 1), z, z, {}, False)))
    for data in [b"", b"garbage", good[:-3], good, wrong_size, b"RRLS\x09" + good[5:]]:
        assert rx.push(data) == []
    s = rx.stats()
    assert (s["malformed"], s["steps"], rx.obs_dim, rx.act_dim) == (5, 1, OBS_DIM, ACT_DIM)
    assert "version 9" in rx.last_malformed_reason
    assert s["sequence/received"] == 1  # a malformed message never reaches the sequence accounting


def test_interventions_keep_their_labels_and_the_bundle_is_carried() -> None:
    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    flags = [False, True, True, False, False]
    msgs = [_msg(s, s, intervention=f, terminated=s == len(flags) - 1) for s, f in enumerate(flags)]
    (a,) = _push_all(rx, msgs)
    (ep,) = a.episodes
    # The learner's HIL-SERL routing reads these: every step online, the human's also to the demo buffer.
    assert ep.intervention.tolist() == flags
    assert np.isnan(ep.policy_actions[1:3]).all() and np.array_equal(ep.actions, np.full((5, ACT_DIM), 0.25))
    assert a.bundle_sha256 == SHA and rx.stats()["bundle_changed"] == 0


def test_a_bundle_changing_mid_episode_is_counted_and_not_attributed() -> None:
    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    out = _push_all(rx, [_msg(0, 0), _msg(1, 1, sha="cd" * 32), _msg(2, 2, sha="cd" * 32, terminated=True)])
    out += _push_all(rx, [_msg(3, 0, episode=1, sha="cd" * 32)]) + rx.flush()
    assert [a.bundle_sha256 for a in out] == ["", "cd" * 32]
    assert rx.stats()["bundle_changed"] == 1


# ------------------------------------------------------------------------ streamed run == recorded run


class ScriptedControl:
    """Stands in for `ControlStep` under a real `EpisodeSession`: scripted records (the session only calls
    `tick` and `reset`)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.episode = -1

    def reset(self, reanchor: bool = False, fresh_since_s: float | None = None) -> None:
        self.step = 0
        self.episode += 1

    def tick(self, now_s: float, human: Any, is_success: bool | None) -> StepRecord:
        k, self.step = self.step, self.step + 1
        # Observation sources still missing at the start of even episodes; one dropout mid-episode 1.
        missing = (self.episode % 2 == 0 and k < 2) or (self.episode == 1 and k == 6)
        obs = np.full(OBS_DIM, np.nan, np.float32) if missing else self.rng.normal(size=OBS_DIM).astype(np.float32)
        human_drives = 3 <= k < 7
        executed = LOW + self.rng.uniform(-0.1, 1.1, size=ACT_DIM) * (HIGH - LOW)  # sometimes beyond the range
        terms = {"success": 1.0 if is_success else 0.0, "rlif": -1.0 if k == 3 else 0.0, "shaping": 0.1 * k + 0.2}
        if k == 5:
            del terms["shaping"]  # a reward hook failed on this step
        return StepRecord(
            step=k,
            stamp_ns=round(now_s * 1e9),
            observation=obs,
            policy_action=np.full(ACT_DIM, np.nan) if human_drives else executed + 0.01,
            executed_action=executed,
            reward_terms=terms,
            intervention=human_drives,
            intervention_onset=k == 3,
            intervention_offset=k == 7,
            source="human" if human_drives else "policy",
            is_success=is_success,
        )


class _Ticker:
    def __init__(self, seed: int) -> None:
        self.session = EpisodeSession(ScriptedControl(seed), max_steps=15)  # type: ignore[arg-type]
        self.batches = [self.session.begin()]
        self.t = 0.0

    def ticks(self, n: int) -> None:
        for _ in range(n):
            self.batches.append(self.session.tick(self.t).events)
            self.t += 0.02


def _crashed_run(seed: int) -> list[tuple[SessionEvent, ...]]:
    """A node run that dies in its second episode (no end: its held step is never written nor sent)."""
    r = _Ticker(seed)
    r.ticks(8)  # episode 0: the robot ends it, success signalled on its last step
    r.session.on_success(True)
    r.session.on_episode_done(r.t)
    r.ticks(5)  # episode 1: the node dies
    return r.batches


def _scripted_run(seed: int) -> list[tuple[SessionEvent, ...]]:
    """A node run with terminated, step-limit, service-cut, robot-truncated and halted episodes."""
    r = _Ticker(seed)
    r.ticks(10)  # episode 0: the robot reports a terminal state
    r.session.on_success(True)
    r.session.on_terminated(True)
    r.session.on_episode_done(r.t)
    r.ticks(15)  # episode 1: the step limit (the 15th tick closes it)
    r.ticks(7)  # episode 2: cut by the ~/end_episode service
    r.batches.append(r.session.cut())
    r.ticks(5)  # episode 3: the robot's own time limit
    r.session.on_episode_done(r.t)
    r.ticks(4)  # episode 4: deactivated mid-episode
    r.batches.append(r.session.finish())
    return r.batches


RUNS = ("node-run-0", "node-run-1")
"""The crashed run, then the restarted node's."""


def _record_and_stream(
    runs: list[list[tuple[SessionEvent, ...]]], tmp_path: Path, lost: set[tuple[int, int]]
) -> list[bytes]:
    """Record each node run with the real recorder (its own folder, as a restarted node opens a new recorder) and
    stream it; returns the bytes that arrive ((run, seq) in `lost` never do).

    The recorder gets what the stream got: the same steps, and an episode's end record only where its last step
    arrived (the end travels on that step). Where it was lost, the recorder's end says what the receiver could
    know instead: the success signal of the latest step that arrived.
    """
    arrived: list[bytes] = []
    for i, batches in enumerate(runs):
        sender = StreamSender(run_id=RUNS[i], bundle_sha256=f"{i:02d}" * 32)
        latest_success: bool | None = None
        with EpisodeRecorder(RecorderConfig(directory=tmp_path / RUNS[i])) as recorder:
            for events in batches:
                messages = sender.messages(events)
                seqs = iter(m.seq for m in messages)
                kept: list[SessionEvent] = []
                end_lost = False
                for e in events:
                    if isinstance(e, StepRecord):
                        gone = (i, next(seqs)) in lost
                        end_lost = gone and (e.terminated or e.truncated)
                        if gone:
                            continue
                        latest_success = e.is_success
                    elif isinstance(e, EpisodeEnd):
                        if end_lost:
                            e = replace(e, is_success=latest_success)
                        latest_success = None
                    kept.append(e)
                write_events(recorder, tuple(kept), {"env_id": "test"}, wait=True)
                arrived += [encode(m) for m in messages if (i, m.seq) not in lost]
    return arrived


def _same(a: Episode, b: Episode) -> None:
    for name in ("observations", "actions", "policy_actions", "rewards", "intervention", "safety_activated", "cost"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), name
    assert (a.terminated, a.truncated, a.success, a.source) == (b.terminated, b.truncated, b.success, b.source)
    assert a.metadata["first_step"] == b.metadata["first_step"]


N_STEPS = (12, 41)
"""Steps each run writes: the crashed run's 8 + 4 (its last held step dies with it), the scripted run's 41."""


@pytest.mark.parametrize(
    "loss",
    [
        0.0,
        0.15,
        0.4,
        {(1, 9)},
        {(0, 0), (0, 1)},
        {(1, 0), (1, 1)},
        {(0, 7), (0, 11)},
        {(1, 40)},
    ],
    ids=[
        "lossless",
        "15%",
        "40%",
        "terminal-step-lost",
        "first-steps-lost",
        "first-steps-after-restart-lost",
        "end-and-crash-tail-lost",
        "last-step-lost",
    ],
)
def test_streamed_episodes_equal_the_recorded_runs(tmp_path: Path, loss: float | set[tuple[int, int]]) -> None:
    runs = [_crashed_run(seed=2), _scripted_run(seed=3)]
    for batches, n in zip(runs, N_STEPS, strict=True):
        assert sum(isinstance(e, StepRecord) for events in batches for e in events) == n
    rng = np.random.default_rng(4)
    everything = [(i, q) for i, n in enumerate(N_STEPS) for q in range(n)]
    lost = loss if isinstance(loss, set) else {k for k in everything if rng.random() < loss}
    arrived = _record_and_stream(runs, tmp_path, lost)

    rx = StreamReceiver(OBS_DIM, ACT_DIM)
    closed = _push_all(rx, arrived) + rx.flush()

    # Recording side: one folder per node run, episode files in order (the crashed run's open episode is closed
    # by the recorder, ended_by "close"). Compared per (run, episode): an episode every step of which was lost
    # has an empty file and no streamed counterpart.
    recorded: dict[tuple[str, int], list[Episode]] = {}
    for run in RUNS:
        paths = list_episodes(tmp_path / run)
        assert len(paths) == (2 if run == RUNS[0] else 5)
        for index, path in enumerate(paths):
            recorded[(run, index)] = recording_episodes(read_episode(path))
    streamed: dict[tuple[str, int], list[Episode]] = {}
    for a in closed:
        assert (a.run_id, a.episode) not in streamed  # each streamed episode closed once
        streamed[(a.run_id, a.episode)] = list(a.episodes)
        assert a.bundle_sha256 == f"{RUNS.index(a.run_id):02d}" * 32
    for key, episodes in recorded.items():
        got = streamed.get(key, [])
        assert len(got) == len(episodes), key
        for x, y in zip(got, episodes, strict=True):
            _same(x, y)
    assert set(streamed) <= set(recorded)

    # Both paths drop the same steps (no next observation, non-finite observation).
    s = rx.stats()
    recorded_steps = sum(len(read_episode(p)) for run in RUNS for p in list_episodes(tmp_path / run))
    recorded_transitions = sum(len(e) for eps in recorded.values() for e in eps)
    assert recorded_steps == sum(N_STEPS) - len(lost) == s["steps"] == sum(a.steps for a in closed)
    assert (s["transitions"], s["steps_dropped"]) == (recorded_transitions, recorded_steps - recorded_transitions)
    assert (s["malformed"], s["forced_cuts"], s["bundle_changed"], s["sequence/restarts"]) == (0, 0, 0, 1)
    assert s["episodes_complete"] + s["episodes_incomplete"] == len(closed)
    # Losses before the first arrival or after the last of a run cannot be seen (nothing brackets them); a
    # restarted run's first seq is 0, so its early losses can.
    seen = [sorted(q for q in range(n) if (i, q) not in lost) for i, n in enumerate(N_STEPS)]
    expected_lost = sum(1 for i, q in lost if (seen[i][0] if i == 0 else -1) < q < seen[i][-1])
    assert s["sequence/lost"] == expected_lost
    if not lost:
        # Every kind of end, label and cut occurs: the equality is not vacuous.
        pieces = [e for eps in streamed.values() for e in eps]
        assert any(e.terminated for e in pieces) and any(e.truncated for e in pieces)
        assert any(e.success for e in pieces) and any(e.intervention.any() for e in pieces)
        assert (s["episodes_complete"], s["episodes_incomplete"]) == (6, 1)  # the crashed run's open episode
        assert s["steps_dropped"] > 0


def test_the_terminal_step_lost_loses_the_success_only_the_end_record_knew(tmp_path: Path) -> None:
    runs = [_crashed_run(seed=2), _scripted_run(seed=3)]
    rx_all, rx_lossy = StreamReceiver(OBS_DIM, ACT_DIM), StreamReceiver(OBS_DIM, ACT_DIM)
    everything = _push_all(rx_all, _record_and_stream(runs, tmp_path / "all", set()))
    lossy = _push_all(rx_lossy, _record_and_stream(runs, tmp_path / "lossy", {(1, 9)}))
    first = next(a for a in everything if a.run_id == RUNS[1])
    cut = next(a for a in lossy if a.run_id == RUNS[1])
    assert first.complete and first.success and first.episodes[-1].terminated
    assert first.episodes[0].metadata["first_step"] == 2  # steps 0 and 1 had no observation yet
    # The success signal came after the last tick: with the end record lost it is unknown, not claimed.
    assert not cut.complete and not cut.success and cut.episodes[-1].truncated
    assert rx_lossy.stats()["episodes_incomplete"] == 2  # that one and the crashed run's open episode
