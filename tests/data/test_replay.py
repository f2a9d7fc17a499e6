"""ReplayBuffer: ring wrap-around, dtype preservation, terminated ≠ truncated, exact state round trip."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.data.replay import ReplayBuffer


def _fill(buf: ReplayBuffer, n: int, start: int = 0) -> None:
    """Transition i has obs = i, action = -i/100, reward = 10 i, next_obs = i + 0.5."""
    obs_dim, act_dim = buf.obs.shape[1], buf.action.shape[1]
    for i in range(start, start + n):
        buf.add(
            np.full(obs_dim, i), np.full(act_dim, -i / 100), 10.0 * i, np.full(obs_dim, i + 0.5), i % 3 == 0, i % 3 == 1
        )


def test_wrap_around_overwrites_oldest() -> None:
    buf = ReplayBuffer(capacity=5, obs_dim=2, act_dim=1)
    _fill(buf, 8)
    assert len(buf) == 5 and buf.size == 5
    assert buf.pos == 3  # 8 % 5
    # slots 0..2 hold transitions 5..7, slots 3..4 still hold 3..4; 0..2 are gone
    np.testing.assert_array_equal(buf.obs[:, 0], [5, 6, 7, 3, 4])
    np.testing.assert_array_equal(buf.reward, [50, 60, 70, 30, 40])
    np.testing.assert_array_equal(buf.next_obs[:, 1], [5.5, 6.5, 7.5, 3.5, 4.5])
    sampled = buf.sample(1000, np.random.default_rng(0))
    assert set(sampled.obs[:, 0].tolist()) == {3.0, 4.0, 5.0, 6.0, 7.0}


def test_sampling_only_reads_written_slots() -> None:
    buf = ReplayBuffer(capacity=100, obs_dim=1, act_dim=1)
    _fill(buf, 3, start=1)
    sampled = buf.sample(500, np.random.default_rng(1))
    assert set(sampled.obs[:, 0].tolist()) == {1.0, 2.0, 3.0}


def test_sample_rows_stay_aligned() -> None:
    buf = ReplayBuffer(capacity=7, obs_dim=3, act_dim=2)
    _fill(buf, 11)
    b = buf.sample(64, np.random.default_rng(2))
    i = b.obs[:, 0]
    np.testing.assert_array_equal(b.reward, 10 * i)
    np.testing.assert_array_equal(b.next_obs[:, 2], i + 0.5)
    np.testing.assert_allclose(b.action[:, 1], -i / 100, rtol=1e-6)
    np.testing.assert_array_equal(b.terminated, (i % 3 == 0).astype(np.float32))
    np.testing.assert_array_equal(b.truncated, (i % 3 == 1).astype(np.float32))


def test_terminated_and_truncated_are_stored_separately() -> None:
    buf = ReplayBuffer(capacity=4, obs_dim=1, act_dim=1)
    for term, trunc in [(True, False), (False, True), (False, False), (True, True)]:
        buf.add([0.0], [0.0], 0.0, [0.0], term, trunc)
    np.testing.assert_array_equal(buf.terminated, [1, 0, 0, 1])
    np.testing.assert_array_equal(buf.truncated, [0, 1, 0, 1])
    batch = buf.gather(np.array([1, 0]))
    np.testing.assert_array_equal(batch.terminated, [0, 1])  # truncation is not termination
    np.testing.assert_array_equal(batch.truncated, [1, 0])


def test_float64_observations_survive_add_sample_and_state_round_trip() -> None:
    buf = ReplayBuffer(capacity=4, obs_dim=2, act_dim=1, obs_dtype=np.float64)
    precise = np.array([1.0 + 1e-12, -3.0 - 1e-13])  # not representable in float32
    buf.add(precise, [0.5], 1.0, precise * 2, False, False)
    b = buf.sample(3, np.random.default_rng(0))
    assert b.obs.dtype == np.float64 and b.next_obs.dtype == np.float64
    np.testing.assert_array_equal(b.obs[0], precise)
    state = buf.state_arrays()
    assert state["obs"].dtype == np.float64
    other = ReplayBuffer(capacity=4, obs_dim=2, act_dim=1, obs_dtype=np.float64)
    other.load_state_arrays(state, pos=buf.pos)
    np.testing.assert_array_equal(other.sample(1, np.random.default_rng(0)).next_obs[0], precise * 2)
    # a float32 buffer refuses float64 state instead of silently rounding it
    with pytest.raises(ValueError, match="obs"):
        ReplayBuffer(capacity=4, obs_dim=2, act_dim=1).load_state_arrays(state, pos=buf.pos)


@pytest.mark.parametrize("n_added", [3, 7, 11])  # partial, exactly full, wrapped
def test_state_round_trip_gives_identical_samples_and_writes(n_added: int) -> None:
    buf = ReplayBuffer(capacity=7, obs_dim=3, act_dim=2)
    _fill(buf, n_added)
    state = {k: v.copy() for k, v in buf.state_arrays().items()}
    restored = ReplayBuffer(capacity=7, obs_dim=3, act_dim=2)
    restored.load_state_arrays(state, pos=buf.pos)
    assert (restored.size, restored.pos) == (buf.size, buf.pos)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(3):
        for x, y in zip(buf.sample(16, rng_a), restored.sample(16, rng_b), strict=True):
            np.testing.assert_array_equal(x, y)
    # later writes land in the same slot in both buffers
    _fill(buf, 4, start=100)
    _fill(restored, 4, start=100)
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(buf, name), getattr(restored, name))


def test_inconsistent_saved_state_is_rejected() -> None:
    buf = ReplayBuffer(capacity=5, obs_dim=2, act_dim=1)
    _fill(buf, 3)
    state = buf.state_arrays()
    fresh = ReplayBuffer(capacity=5, obs_dim=2, act_dim=1)
    with pytest.raises(ValueError, match="position"):
        fresh.load_state_arrays(state, pos=1)  # partially filled buffers write right after the data
    with pytest.raises(ValueError, match="position"):
        fresh.load_state_arrays(state, pos=5)
    with pytest.raises(ValueError, match="position"):
        fresh.load_state_arrays(state, pos=-1)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=2, obs_dim=2, act_dim=1).load_state_arrays(state, pos=0)
    with pytest.raises(ValueError, match="obs"):
        ReplayBuffer(capacity=5, obs_dim=3, act_dim=1).load_state_arrays(state, pos=3)
    assert fresh.size == 0  # nothing half-loaded by the rejected attempts above


def test_empty_and_invalid_buffers() -> None:
    with pytest.raises(ValueError):
        ReplayBuffer(capacity=0, obs_dim=1, act_dim=1)
    with pytest.raises(RuntimeError, match="empty"):
        ReplayBuffer(capacity=3, obs_dim=1, act_dim=1).sample(2, np.random.default_rng(0))


def test_iterate_yields_fresh_batches() -> None:
    buf = ReplayBuffer(capacity=50, obs_dim=1, act_dim=1)
    _fill(buf, 50)
    it = buf.iterate(8, np.random.default_rng(0))
    first, second = next(it), next(it)
    assert first.obs.shape == (8, 1) and first.reward.shape == (8,)
    assert not np.array_equal(first.obs, second.obs)


def test_add_batch_equals_adding_one_by_one_including_wrap_around() -> None:
    rng = np.random.default_rng(0)
    n = 13
    cols = {
        "obs": rng.normal(size=(n, 2)),
        "action": rng.uniform(-1, 1, size=(n, 1)),
        "reward": rng.normal(size=n),
        "next_obs": rng.normal(size=(n, 2)),
        "terminated": (np.arange(n) % 4 == 0).astype(np.float32),
        "truncated": (np.arange(n) % 5 == 0).astype(np.float32),
        "cost": rng.uniform(0, 1, size=n),
        "intervention": (np.arange(n) % 3 == 0).astype(np.float32),
        "source": np.arange(n) % 3,
    }
    for capacity, split in [(20, 5), (8, 3), (5, 0)]:  # fits, wraps, longer than the buffer in one call
        one = ReplayBuffer(capacity, 2, 1)
        for i in range(n):
            one.add(*(cols[k][i] for k in cols))
        bulk = ReplayBuffer(capacity, 2, 1)
        bulk.add_batch(**{k: v[:split] for k, v in cols.items()})
        bulk.add_batch(**{k: v[split:] for k, v in cols.items()})
        assert (bulk.pos, bulk.size) == (one.pos, one.size)
        for name, array in one.state_arrays().items():
            np.testing.assert_array_equal(bulk.state_arrays()[name], array, err_msg=f"{name} @ capacity {capacity}")


def test_optional_columns_fill_batches_and_default_for_datasets() -> None:
    buf = ReplayBuffer(10, 1, 1)
    buf.add([0.0], [0.0], 0.0, [0.0], False, False, cost=0.5, intervention=True, source=2)
    buf.add_batch(np.ones((2, 1)), np.zeros((2, 1)), np.zeros(2), np.ones((2, 1)), np.zeros(2), np.zeros(2))
    b = buf.gather(np.array([0, 1, 2]))
    assert b.cost is not None and b.intervention is not None and b.source is not None
    np.testing.assert_array_equal(b.cost, [0.5, 0, 0])
    np.testing.assert_array_equal(b.intervention, [1, 0, 0])
    np.testing.assert_array_equal(b.source, [2, 1, 1])  # add_batch defaults to the dataset code
    assert b.source.dtype == np.int64 and b.cost.dtype == np.float32
    with pytest.raises(ValueError, match=r"reward \(3,\) \(expected \(2,\)\)"):
        buf.add_batch(np.ones((2, 1)), np.zeros((2, 1)), np.zeros(3), np.ones((2, 1)), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="obs"):
        buf.add_batch(np.ones((2, 4)), np.zeros((2, 1)), np.zeros(2), np.ones((2, 1)), np.zeros(2), np.zeros(2))


def test_state_without_the_optional_columns_still_loads() -> None:
    """A checkpoint written before cost/intervention/source existed: those rows were online, costless."""
    buf = ReplayBuffer(capacity=6, obs_dim=2, act_dim=1)
    _fill(buf, 4)
    buf.cost[:] = 9.0
    old_state = {k: v for k, v in buf.state_arrays().items() if k not in ("cost", "intervention", "source")}
    restored = ReplayBuffer(capacity=6, obs_dim=2, act_dim=1)
    restored.cost[:] = 7.0  # stale values must not survive the load
    restored.load_state_arrays(old_state, pos=4)
    np.testing.assert_array_equal(restored.obs, buf.obs)
    np.testing.assert_array_equal(restored.cost[:4], 0.0)
    np.testing.assert_array_equal(restored.source[:4], 0)
