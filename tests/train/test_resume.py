"""Exact resume: stop mid-episode, resume, and end bitwise where an uninterrupted run ends."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import torch

from robot_rl.train import checkpoint as ckpt
from robot_rl.train.config import TrainConfig
from robot_rl.train.loop import train

N = 700  # Pendulum episodes are 200 steps: the midpoint 350 is in the middle of episode 1


def _latest(run_dir: Any) -> ckpt.Checkpoint:
    path = ckpt.latest_checkpoint(run_dir / "checkpoints")
    assert path is not None
    return ckpt.load_checkpoint(path)


@pytest.mark.parametrize("kind", ["sac", "crossq", "td3"])
def test_resume_mid_episode_is_bit_identical_to_an_uninterrupted_run(
    kind: str, make_train_cfg: Callable[..., TrainConfig], tiny_sac: Any, tiny_crossq: Any, tiny_td3: Any
) -> None:
    algo, algo_cfg = {"sac": ("sac", tiny_sac), "crossq": ("sac", tiny_crossq), "td3": ("td3", tiny_td3)}[kind]
    straight = train(make_train_cfg("straight", total_steps=N, seed=2), algo, algo_cfg)

    half_cfg = make_train_cfg("split", total_steps=N // 2, seed=2)
    train(half_cfg, algo, algo_cfg)
    mid = _latest(straight.run_dir.parent / "split")
    assert mid.state["step"] == N // 2
    assert mid.state["ep_len"] == N // 2 - 200 > 0, "the checkpoint must be mid-episode"
    assert mid.data["episode_actions"].shape == (N // 2 - 200, 1)

    resumed = train(half_cfg, algo, algo_cfg, resume=True, extend_to_steps=N)
    assert resumed.steps == N
    a, b = _latest(straight.run_dir), _latest(resumed.run_dir)
    assert a.state["step"] == b.state["step"] == N
    assert a.model.keys() == b.model.keys()
    for k in a.model:  # weights, normalizer, log α and every optimizer moment
        assert torch.equal(a.model[k], b.model[k]), f"model tensor {k} differs after resume"
    for k in a.data:  # replay buffer, RNG state, current episode
        assert torch.equal(a.data[k], b.data[k]), f"data tensor {k} differs after resume"
    for key in ("episode", "ep_len", "ep_return", "buffer_pos", "rng", "algo_meta"):
        assert a.state[key] == b.state[key], key
    assert straight.final_eval.returns == resumed.final_eval.returns
    # the resumed run's saved config records the extended budget
    saved = json.loads((resumed.run_dir / "config.json").read_text())
    assert saved["train"]["total_steps"] == N


def test_resume_needs_a_run_and_a_checkpoint(make_train_cfg: Callable[..., TrainConfig], tiny_sac: Any) -> None:
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        train(make_train_cfg("nothing-here"), "sac", tiny_sac, resume=True)
    cfg = make_train_cfg("done", total_steps=250)
    train(cfg, "sac", tiny_sac)
    (cfg.out_dir / "done" / "checkpoints" / "latest").unlink()
    with pytest.raises(FileNotFoundError, match="no valid checkpoint"):
        train(cfg, "sac", tiny_sac, resume=True, extend_to_steps=300)


def test_resume_refuses_a_tampered_checkpoint(make_train_cfg: Callable[..., TrainConfig], tiny_sac: Any) -> None:
    cfg = make_train_cfg("tampered", total_steps=250)
    result = train(cfg, "sac", tiny_sac)
    model_file = _latest(result.run_dir).path / "model.safetensors"
    raw = bytearray(model_file.read_bytes())
    raw[-5] ^= 0xFF
    model_file.write_bytes(bytes(raw))
    with pytest.raises(ckpt.CheckpointError, match="sha256"):
        train(cfg, "sac", tiny_sac, resume=True, extend_to_steps=300)


def test_second_run_into_the_same_directory_needs_resume(
    make_train_cfg: Callable[..., TrainConfig], tiny_td3: Any
) -> None:
    cfg = make_train_cfg("once", total_steps=150, learning_starts=150)
    train(cfg, "td3", tiny_td3)
    before = (cfg.out_dir / "once" / "config.json").read_text()
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, "td3", tiny_td3)
    assert (cfg.out_dir / "once" / "config.json").read_text() == before
