"""One driver, three data modes: the mixed sampler's exact split, offline runs (resume, dataset checks), mixed runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.algos.sac import SAC
from robot_rl.core.types import Batch, DataSource, TrainingStats
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train import checkpoint as ckpt
from robot_rl.train.batches import mixed_batches, offline_rows
from robot_rl.train.config import TrainConfig
from robot_rl.train.loop import train
from tests.train.pendulum_expert import expert_buffer


def _numbered(n: int, offset: float, source: int) -> ReplayBuffer:
    """Row i: obs = offset + i, reward = 2 (offset + i), next_obs = obs + 0.5."""
    buf = ReplayBuffer(n, 2, 1)
    i = offset + np.arange(n, dtype=np.float32)
    obs = np.stack([i, i], 1)
    zeros = np.zeros(n, np.float32)
    buf.add_batch(obs, np.zeros((n, 1)), 2 * i, obs + 0.5, zeros, zeros, source=source)
    return buf


@pytest.mark.parametrize(("ratio", "batch", "n_offline"), [(0.5, 256, 128), (0.25, 8, 2), (0.3, 10, 3), (0.0, 6, 0)])
def test_mixed_batches_split_exactly_and_keep_rows_aligned(ratio: float, batch: int, n_offline: int) -> None:
    online, offline = _numbered(50, 0.0, DataSource.ONLINE), _numbered(70, 1000.0, DataSource.DATASET)
    rng = np.random.default_rng(4)
    ref_rng = np.random.default_rng(4)
    it = mixed_batches(online, offline, ratio, batch, rng)
    for _ in range(3):
        b = next(it)
        assert b.obs.shape == (batch, 2) and b.source is not None
        n_on = batch - n_offline
        assert offline_rows(ratio, batch) == n_offline
        np.testing.assert_array_equal(b.source, [0] * n_on + [1] * n_offline)  # online rows first
        assert np.all(b.obs[:n_on, 0] < 1000) and np.all(b.obs[n_on:, 0] >= 1000)
        np.testing.assert_array_equal(b.reward, 2 * b.obs[:, 0])
        np.testing.assert_array_equal(b.next_obs, b.obs + 0.5)
        # the draws are online first, then offline, from the one generator (reproducible runs)
        expected_on = ref_rng.integers(0, 50, size=n_on) if n_on else np.zeros(0)
        expected_off = ref_rng.integers(0, 70, size=n_offline) + 1000 if n_offline else np.zeros(0)
        np.testing.assert_array_equal(b.obs[:, 0], np.concatenate([expected_on, expected_off]))


def test_mixed_batches_all_from_the_dataset_and_bad_ratios() -> None:
    empty_online = ReplayBuffer(4, 2, 1)
    offline = _numbered(10, 1000.0, DataSource.DATASET)
    b = next(mixed_batches(empty_online, offline, 1.0, 16, np.random.default_rng(0)))
    assert np.all(b.source == 1) and b.obs.shape == (16, 2)
    with pytest.raises(ValueError, match=r"demo ratio must be in \[0, 1\], got 1.5"):
        next(mixed_batches(offline, offline, 1.5, 16, np.random.default_rng(0)))
    with pytest.raises(RuntimeError, match="dataset buffer is empty"):
        next(mixed_batches(offline, ReplayBuffer(4, 2, 1), 0.5, 16, np.random.default_rng(0)))


def _latest(run_dir: Any) -> ckpt.Checkpoint:
    path = ckpt.latest_checkpoint(run_dir / "checkpoints")
    assert path is not None
    return ckpt.load_checkpoint(path)


def test_offline_run_resumes_bit_identically(make_train_cfg: Callable[..., TrainConfig], tiny_sac: Any) -> None:
    data = expert_buffer(3)
    kw = {"data": "offline", "log_every": 50, "checkpoint_every": 100, "learning_starts": 0}
    straight = train(make_train_cfg("straight", total_steps=300, **kw), "sac", tiny_sac, offline_buffer=data)
    half = make_train_cfg("split", total_steps=150, **kw)
    train(half, "sac", tiny_sac, offline_buffer=data)
    assert _latest(straight.run_dir.parent / "split").state["step"] == 150
    resumed = train(half, "sac", tiny_sac, resume=True, extend_to_steps=300, offline_buffer=data)
    a, b = _latest(straight.run_dir), _latest(resumed.run_dir)
    assert a.state["step"] == b.state["step"] == 300 and a.state["data"] == "offline"
    for k in a.model:
        assert torch.equal(a.model[k], b.model[k]), k
    assert a.state["rng"] == b.state["rng"] and a.state["algo_meta"] == b.state["algo_meta"]
    assert not any(k.startswith("buffer/") for k in a.data)  # the dataset is not copied into checkpoints
    assert straight.final_eval.returns == resumed.final_eval.returns
    config = json.loads((straight.run_dir / "config.json").read_text())
    assert config["dataset"]["transitions"] == 600 and config["train"]["data"] == "offline"
    records = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss/critic" in r] == [50, 100, 150, 200, 250, 300]
    assert not any("train/episode_return" in r for r in records)  # no env episodes: updates only

    # A changed dataset is refused on resume (the run would silently train on other data).
    other = expert_buffer(3, seed=7)
    with pytest.raises(ckpt.CheckpointError, match="the dataset changed"):
        train(half, "sac", tiny_sac, resume=True, extend_to_steps=400, offline_buffer=other)


def test_offline_data_is_checked(make_train_cfg: Callable[..., TrainConfig], tiny_sac: Any) -> None:
    with pytest.raises(ValueError, match="--data offline needs --dataset"):
        train(make_train_cfg("none", data="offline"), "sac", tiny_sac)
    with pytest.raises(ValueError, match="observations of size 2 and actions of size 1, but Pendulum-v1 has 3 and 1"):
        train(make_train_cfg("dims", data="offline"), "sac", tiny_sac, offline_buffer=_numbered(5, 0.0, 1))
    wild = expert_buffer(1)
    wild.action[3] = 2.0  # a physical torque where a normalized action belongs
    with pytest.raises(ValueError, match=r"actions outside \[-1, 1\]"):
        train(make_train_cfg("wild", data="mixed"), "sac", tiny_sac, offline_buffer=wild)
    with pytest.raises(ValueError, match="demo_ratio must be in"):
        make_train_cfg("ratio", data="mixed", demo_ratio=-0.1)


def test_mixed_run_feeds_the_algorithm_both_sources(
    make_train_cfg: Callable[..., TrainConfig], tiny_sac: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[np.ndarray] = []
    real_update = SAC.update

    def spying_update(self: SAC, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        def spy() -> Iterator[Batch[torch.Tensor]]:
            for b in batches:
                assert b.source is not None
                seen.append(b.source.numpy().copy())
                yield b

        return real_update(self, spy())

    monkeypatch.setattr(SAC, "update", spying_update)
    cfg = make_train_cfg("mixed", data="mixed", demo_ratio=0.25, total_steps=250, learning_starts=50)
    result = train(cfg, "sac", tiny_sac, offline_buffer=expert_buffer(2))
    assert len(seen) == 200  # one batch per env step after the warm-up
    for src in seen:  # batch 32: 8 dataset rows, 24 online rows, every time
        np.testing.assert_array_equal(src, [0] * 24 + [1] * 8)
    ck = _latest(result.run_dir)
    assert ck.data["buffer/obs"].shape == (250, 3)  # the online buffer only: the dataset stays outside
    assert np.all(ck.data["buffer/source"].numpy() == DataSource.ONLINE)
