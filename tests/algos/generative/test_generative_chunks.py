"""Chunk and history batches: never across an episode boundary, padded as documented; plain batches unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.data.chunks import gather_chunks
from robot_rl.data.datasets import Episode, fill_replay
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train.batches import BatchLayout, mixed_batches, requested_layout, sample_batches

SPEC = PolicySpec(ObservationSpec.flat(2), ActionSpec(low=(-100.0, -100.0), high=(100.0, 100.0)), control_hz=10.0)


def _episode(ep: int, length: int, terminated: bool, truncated: bool) -> Episode:
    """Observation and action both say (episode, step), so a gathered row tells where it came from."""
    steps = np.arange(length + 1, dtype=np.float32)
    obs = np.stack([np.full_like(steps, ep), steps], axis=1)
    return Episode.build(obs, obs[:-1], np.zeros(length), terminated=terminated, truncated=truncated, source="expert")


def _decode(action_norm: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(action_norm) * 100.0).astype(int)  # normalized with the ±100 range above


# lengths and end flags: truncated, terminated, an unflagged cut (neither flag), a one-step episode, truncated
EPISODES = [(3, False, True), (4, True, False), (5, False, False), (1, False, True), (2, False, True)]


def _dataset() -> ReplayBuffer:
    buf = ReplayBuffer(sum(n for n, _, _ in EPISODES), 2, 2)
    fill_replay(buf, [_episode(i, n, te, tr) for i, (n, te, tr) in enumerate(EPISODES)], SPEC)
    return buf


@pytest.mark.parametrize(("chunk", "history"), [(4, 1), (1, 3), (6, 4)])
def test_chunks_and_histories_stay_inside_their_episode(chunk: int, history: int) -> None:
    buf = _dataset()
    idx = np.arange(len(buf))
    b = gather_chunks(buf, idx, chunk, history)
    assert b.action_chunk is not None and b.obs_history is not None
    assert b.action_chunk.shape == (len(buf), chunk, 2) and b.obs_history.shape == (len(buf), history, 2)
    ep_of, step_of = _decode(b.action)[:, 0], _decode(b.action)[:, 1]
    last = {i: n - 1 for i, (n, _, _) in enumerate(EPISODES)}
    for row in range(len(buf)):
        ep, step = ep_of[row], step_of[row]
        got = _decode(b.action_chunk[row])
        assert np.all(got[:, 0] == ep), (row, got)  # never another episode's action
        np.testing.assert_array_equal(got[:, 1], np.minimum(step + np.arange(chunk), last[ep]))  # last repeats
        hist = b.obs_history[row]
        assert np.all(hist[:, 0] == ep), (row, hist)
        np.testing.assert_array_equal(hist[:, 1], np.maximum(step - np.arange(history)[::-1], 0))  # first repeats
        np.testing.assert_array_equal(hist[-1], b.obs[row])  # the last history slot is `obs`
        np.testing.assert_array_equal(b.action_chunk[row, 0], b.action[row])  # chunk step 0 is `action`


def test_a_wrapped_ring_buffer_neither_chunks_past_its_newest_row_nor_looks_before_its_oldest() -> None:
    buf = ReplayBuffer(7, 2, 2)
    for step in range(10):  # one long episode, no end yet: rows 3..9 survive, the newest is step 9
        o = np.array([0.0, step], np.float32)
        buf.add(o, o / 100.0, 0.0, o + np.array([0.0, 1.0], np.float32), False, False)
    assert buf.pos == 3 and len(buf) == 7
    b = gather_chunks(buf, np.arange(7), chunk_size=3, obs_history=3)
    assert b.action_chunk is not None and b.obs_history is not None
    for row in range(7):
        step = int(_decode(b.action[row])[1])
        np.testing.assert_array_equal(_decode(b.action_chunk[row])[:, 1], np.minimum(step + np.arange(3), 9))
        np.testing.assert_array_equal(b.obs_history[row][:, 1], np.maximum(step - np.arange(3)[::-1], 3))


def test_plain_batches_are_unchanged_and_cost_nothing_extra() -> None:
    buf = _dataset()
    plain = buf.iterate(8, np.random.default_rng(0))
    same = sample_batches(buf, 8, np.random.default_rng(0))
    for _ in range(3):
        a, b = next(plain), next(same)
        assert b.action_chunk is None and b.obs_history is None
        for x, y in zip(a, b, strict=True):
            assert (x is None and y is None) or np.array_equal(np.asarray(x), np.asarray(y))
    assert requested_layout(object()) == BatchLayout()  # SAC/TD3 declare nothing: plain batches


def test_mixed_batches_fill_chunks_from_both_buffers() -> None:
    online = _dataset()
    stream = mixed_batches(
        online, _dataset(), 0.5, 8, np.random.default_rng(0), BatchLayout(chunk_size=3, obs_history=2)
    )
    b = next(stream)
    assert b.action_chunk is not None and b.obs_history is not None
    assert b.action_chunk.shape == (8, 3, 2) and b.obs_history.shape == (8, 2, 2)
    assert np.all(_decode(b.action_chunk)[:, :, 0] == _decode(b.action)[:, None, 0])
