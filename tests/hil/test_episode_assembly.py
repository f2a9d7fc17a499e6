"""Streamed steps become the same training episodes as the recording of the same run: the learner's data equals
`robot-rl dataset mcap`'s (observations, executed actions, rewards, intervention labels, terminal flags), including
a lost step and an episode a node restart cut short."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_rl.data.datasets.sources.mcap import recording_episodes
from robot_rl.data.episode_record import RecorderConfig
from robot_rl.data.mcap_reader import list_episodes, read_episode
from robot_rl.data.mcap_writer import EpisodeRecorder
from robot_rl.data.step_record import StepRecord
from robot_rl.hil.episodes import EpisodeAssembler

OBS, ACT = 5, 2


def _run(rng: np.random.Generator, steps: int, end: str, human: tuple[int, int]) -> list[StepRecord]:
    """One episode's step records as the session emits them (the last carries the end flag)."""
    out = []
    for t in range(steps):
        last = t == steps - 1
        out.append(
            StepRecord(
                step=t,
                stamp_ns=1_000_000 * (t + 1),
                observation=rng.normal(size=OBS),
                policy_action=rng.normal(size=ACT),
                executed_action=rng.uniform(-1, 1, ACT),
                reward_terms={"success": float(last and end == "terminated"), "rlif": -float(t == human[0])},
                intervention=human[0] <= t < human[1],
                terminated=last and end == "terminated",
                truncated=last and end == "truncated",
                is_success=last and end == "terminated",
            )
        )
    return out


def _record(directory: Path, episodes: list[list[StepRecord]]) -> None:
    rec = EpisodeRecorder(RecorderConfig(directory=directory))
    for steps in episodes:
        rec.start_episode({"policy_sha256": "x"})
        for s in steps:
            assert rec.record_step(s)
        last = steps[-1]
        rec.end_episode(
            terminated=last.terminated,
            truncated=last.truncated,
            extra={"is_success": str(bool(last.is_success)).lower()},
        )
    rec.close()


def _same(a: object, b: object) -> None:
    for name in ("observations", "actions", "policy_actions", "rewards", "intervention"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.terminated, a.truncated, a.success) == (b.terminated, b.truncated, b.success)  # type: ignore[attr-defined]


def test_streamed_episodes_equal_the_recorded_ones(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    runs = [_run(rng, 12, "terminated", (3, 6)), _run(rng, 9, "truncated", (0, 0)), _run(rng, 7, "terminated", (5, 7))]
    runs[1] = runs[1][:4] + runs[1][5:]  # a step lost on the way (and by the recorder): a cut, never bridged
    _record(tmp_path, runs)
    recorded = [e for path in list_episodes(tmp_path) for e in recording_episodes(read_episode(path))]

    asm = EpisodeAssembler()
    streamed = []
    for i, steps in enumerate(runs):
        for s in steps:
            for closed in asm.add("node-a", i, s):
                assert closed.complete
                streamed.extend(closed.episodes)
    assert asm.flush() == []
    assert len(streamed) == len(recorded) == 4  # the gap cut episode 1 in two
    for a, b in zip(streamed, recorded, strict=True):
        _same(a, b)
    assert streamed[0].terminated and streamed[0].success and int(streamed[0].intervention.sum()) == 3
    assert streamed[1].truncated and not streamed[1].terminated


def test_a_node_restart_closes_the_open_episode_as_incomplete(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    first, second = _run(rng, 10, "terminated", (0, 0)), _run(rng, 6, "terminated", (0, 0))
    asm = EpisodeAssembler()
    out = []
    for s in first[:5]:  # the node died mid-episode
        out += asm.add("node-a", 0, s)
    assert out == []
    for s in second:  # a restarted node starts at episode 0 again, under a new run id
        out += asm.add("node-b", 0, s)
    assert [(c.run_id, c.complete, c.steps) for c in out] == [("node-a", False, 5), ("node-b", True, 6)]
    assert asm.closed_incomplete == 1
    cut = out[0].episodes[0]
    assert cut.truncated and not cut.terminated and len(cut) == 4  # the cut step has no next observation
