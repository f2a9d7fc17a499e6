"""n-step rows: sums stop at an episode's end; a terminated end does not bootstrap, a truncated end does (from its
real last observation, discounted by γ^k); nothing leaks across episodes or past the newest row."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.data.nstep import with_nstep
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train.batches import BatchLayout, mixed_batches, sample_batches

GAMMA = 0.9


def _buffer() -> ReplayBuffer:
    """Episode A: 4 steps, terminated. Episode B: 3 steps, truncated. Episode C: 2 steps, still running.
    Observations are the step's global index; rewards 1, 2, 3, … so every sum is checkable by hand."""
    buf = ReplayBuffer(32, obs_dim=1, act_dim=1)
    t = 0
    for length, end in ((4, "terminated"), (3, "truncated"), (2, "running")):
        for j in range(length):
            last = j == length - 1
            buf.add(
                [float(t)],
                [0.0],
                float(t + 1),
                [float(t + 1) if not last else 100.0 + t],  # an episode's last next_obs is not the next row's obs
                terminated=last and end == "terminated",
                truncated=last and end == "truncated",
            )
            t += 1
    return buf


def _rows(idx: list[int], n: int) -> dict[str, np.ndarray]:
    buf = _buffer()
    ix = np.asarray(idx, np.int64)
    b = with_nstep(buf.gather(ix), buf, ix, n, GAMMA)
    assert b.discount is not None
    return {
        "reward": b.reward,
        "next_obs": b.next_obs[:, 0],
        "terminated": b.terminated,
        "truncated": b.truncated,
        "discount": b.discount,
    }


def test_a_window_inside_an_episode_sums_n_rewards() -> None:
    r = _rows([0], 3)
    np.testing.assert_allclose(r["reward"], [1 + GAMMA * 2 + GAMMA**2 * 3])
    np.testing.assert_allclose(r["next_obs"], [3.0])
    np.testing.assert_allclose(r["discount"], [GAMMA**3], rtol=1e-6)
    assert r["terminated"][0] == 0


def test_a_window_reaching_termination_stops_there_without_bootstrap() -> None:
    r = _rows([2], 3)  # steps 2, 3; step 3 terminates episode A
    np.testing.assert_allclose(r["reward"], [3 + GAMMA * 4])
    np.testing.assert_allclose(r["next_obs"], [103.0])  # A's real last observation, not B's first
    assert r["terminated"][0] == 1 and r["truncated"][0] == 0
    np.testing.assert_allclose(r["discount"], [GAMMA**2], rtol=1e-6)


def test_a_window_reaching_truncation_stops_there_and_still_bootstraps() -> None:
    r = _rows([5], 3)  # steps 5, 6; step 6 is B's truncated last step
    np.testing.assert_allclose(r["reward"], [6 + GAMMA * 7])
    np.testing.assert_allclose(r["next_obs"], [106.0])
    assert r["terminated"][0] == 0 and r["truncated"][0] == 1  # truncation is not termination
    np.testing.assert_allclose(r["discount"], [GAMMA**2], rtol=1e-6)


def test_a_window_never_reads_past_the_newest_row() -> None:
    r = _rows([7], 4)  # C: steps 7, 8 stored, nothing after
    np.testing.assert_allclose(r["reward"], [8 + GAMMA * 9])
    np.testing.assert_allclose(r["next_obs"], [108.0])
    assert r["terminated"][0] == 0
    np.testing.assert_allclose(r["discount"], [GAMMA**2], rtol=1e-6)


def test_one_step_is_the_plain_row_with_discount_gamma() -> None:
    buf = _buffer()
    ix = np.arange(9, dtype=np.int64)
    plain, one = buf.gather(ix), with_nstep(buf.gather(ix), buf, ix, 1, GAMMA)
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(one, name), getattr(plain, name))
    np.testing.assert_allclose(one.discount, np.full(9, GAMMA, np.float32))
    with pytest.raises(ValueError, match="horizon"):
        with_nstep(plain, buf, ix, 0, GAMMA)


def test_sampled_and_mixed_batches_carry_nstep_rows_only_when_asked() -> None:
    buf = _buffer()
    plain = next(sample_batches(buf, 8, np.random.default_rng(0)))
    assert plain.discount is None
    nstep = next(sample_batches(buf, 8, np.random.default_rng(0), BatchLayout(n_step=3, gamma=GAMMA)))
    np.testing.assert_array_equal(nstep.obs, plain.obs)  # same draws
    assert nstep.discount is not None and np.all(nstep.discount <= GAMMA)
    mixed = next(mixed_batches(buf, _buffer(), 0.5, 8, np.random.default_rng(1), BatchLayout(n_step=3, gamma=GAMMA)))
    assert mixed.discount is not None and mixed.discount.shape == (8,)
