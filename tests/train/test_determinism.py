"""Same seed → bit-identical runs (also with the env stepped in a worker thread); other seed → other run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.train import checkpoint as ckpt
from robot_rl.train.config import TrainConfig
from robot_rl.train.from_run import load_run_policy
from robot_rl.train.loop import train

OBS = torch.from_numpy((np.random.default_rng(123).uniform(-1, 1, size=(16, 3)) * [1, 1, 8]).astype(np.float32))


def _final(run_dir: Path) -> ckpt.Checkpoint:
    latest = ckpt.latest_checkpoint(run_dir / "checkpoints")
    assert latest is not None
    return ckpt.load_checkpoint(latest)


def _actions(run_dir: Path) -> torch.Tensor:
    with torch.inference_mode():
        return load_run_policy(run_dir).policy(OBS)


def _assert_tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


@pytest.mark.parametrize("kind", ["sac", "td3"])
def test_same_seed_gives_bit_identical_runs(
    kind: str, make_train_cfg: Callable[..., TrainConfig], tiny_sac: Any, tiny_td3: Any
) -> None:
    algo_cfg = tiny_sac if kind == "sac" else tiny_td3
    a = train(make_train_cfg("a", seed=3), kind, algo_cfg)
    b = train(make_train_cfg("b", seed=3), kind, algo_cfg)
    ca, cb = _final(a.run_dir), _final(b.run_dir)
    assert ca.state["step"] == cb.state["step"] == 400
    _assert_tensors_equal(ca.model, cb.model)
    _assert_tensors_equal(ca.data, cb.data)
    assert torch.equal(_actions(a.run_dir), _actions(b.run_dir))
    assert a.final_eval.returns == b.final_eval.returns


def test_different_seeds_give_different_runs(make_train_cfg: Callable[..., TrainConfig], tiny_sac: Any) -> None:
    a = train(make_train_cfg("a", seed=0), "sac", tiny_sac)
    b = train(make_train_cfg("b", seed=1), "sac", tiny_sac)
    ca, cb = _final(a.run_dir), _final(b.run_dir)
    actor_keys = [k for k in ca.model if k.startswith("actor/")]
    assert all(not torch.equal(ca.model[k], cb.model[k]) for k in actor_keys)
    assert not torch.equal(ca.data["buffer/obs"], cb.data["buffer/obs"])
    assert not torch.equal(_actions(a.run_dir), _actions(b.run_dir))


def test_overlapped_env_stepping_matches_sequential(
    make_train_cfg: Callable[..., TrainConfig], tiny_crossq: Any
) -> None:
    a = train(make_train_cfg("overlap", seed=5, overlap_env=True), "sac", tiny_crossq)
    b = train(make_train_cfg("sequential", seed=5, overlap_env=False), "sac", tiny_crossq)
    _assert_tensors_equal(_final(a.run_dir).model, _final(b.run_dir).model)
    _assert_tensors_equal(_final(a.run_dir).data, _final(b.run_dir).data)
