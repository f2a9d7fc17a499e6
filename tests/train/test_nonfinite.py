"""Non-finite losses halt the run with a dump; non-finite env output never enters the buffer."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.train import checkpoint as ckpt
from robot_rl.train.config import TrainConfig
from robot_rl.train.loop import TrainingDiverged, train

FAULTY_ENV = "RobotRLTest/FaultyPendulum-v0"
NAN_OBS_AT = (30, 95)  # env steps (counted over the env's life) whose observation is NaN
INF_REWARD_AT = (160,)  # env steps whose reward is +inf


class FaultyPendulum(gym.Wrapper):
    """Pendulum-v1 that returns a NaN observation or an infinite reward at chosen steps."""

    def __init__(self) -> None:
        super().__init__(gym.make("Pendulum-v1"))
        self.count = 0

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        if self.count in NAN_OBS_AT:
            obs = np.array(obs, copy=True)
            obs[1] = np.nan
        if self.count in INF_REWARD_AT:
            reward = math.inf
        return obs, reward, terminated, truncated, info


@pytest.fixture
def faulty_env() -> Iterator[str]:
    gym.register(id=FAULTY_ENV, entry_point=FaultyPendulum, disable_env_checker=True)
    yield FAULTY_ENV
    gym.registry.pop(FAULTY_ENV, None)


def test_non_finite_env_output_never_enters_the_buffer(
    faulty_env: str, make_train_cfg: Callable[..., TrainConfig], tiny_sac: SACConfig
) -> None:
    total = 250
    cfg = make_train_cfg("faulty", env=faulty_env, total_steps=total, log_every=total)
    algo_cfg = tiny_sac.replace(obs_normalization=True)  # the normalizer must not see NaN either
    result = train(cfg, "sac", algo_cfg)
    path = ckpt.latest_checkpoint(result.run_dir / "checkpoints")
    assert path is not None
    saved = ckpt.load_checkpoint(path)
    n_bad = len(NAN_OBS_AT) + len(INF_REWARD_AT)
    buffer = {k: v for k, v in saved.data.items() if k.startswith("buffer/")}
    assert buffer["buffer/reward"].shape == (total - n_bad,)
    for name, tensor in buffer.items():
        assert bool(torch.isfinite(tensor).all()), f"{name} holds non-finite values"
    assert saved.model["normalizer/count"].item() == total - n_bad
    assert bool(torch.isfinite(saved.model["normalizer/mean"]).all())
    # each bad step ended its episode (reset, not bootstrapped across)
    assert saved.state["episode"] == n_bad
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["data/nonfinite_env_steps"] for r in records if "data/nonfinite_env_steps" in r][-1] == n_bad


def test_non_finite_loss_halts_without_writing_a_checkpoint(
    make_train_cfg: Callable[..., TrainConfig], tiny_sac: SACConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SAC.update

    def diverging(self: SAC, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        stats = original(self, batches)
        if self.num_updates < 200:  # updates start at step 100: this diverges at step 299
            return stats
        with torch.no_grad():
            for p in self.actor.parameters():
                p.fill_(math.nan)
        return TrainingStats(values={**stats.values, "loss/critic": math.nan}, num_updates=stats.num_updates)

    monkeypatch.setattr(SAC, "update", diverging)
    cfg = make_train_cfg("diverges", total_steps=400, checkpoint_every=200)
    run_dir = cfg.out_dir / "diverges"
    with pytest.raises(TrainingDiverged, match="loss/critic") as info:
        train(cfg, "sac", tiny_sac)
    assert "failure.json" in str(info.value)

    failure = json.loads((run_dir / "failure.json").read_text())
    assert failure["step"] == 299 and failure["non_finite"] == ["loss/critic"]
    assert not (run_dir / "summary.json").exists()
    ckpt_dir = run_dir / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["latest", "step_000000200"]  # nothing newer
    latest = ckpt.latest_checkpoint(ckpt_dir)
    assert latest is not None and latest.name == "step_000000200"
    saved = ckpt.load_checkpoint(latest)
    assert all(bool(torch.isfinite(t).all()) for t in saved.model.values() if t.is_floating_point())

    # the last valid checkpoint is usable: the run resumes from it and finishes
    monkeypatch.undo()
    resumed = train(cfg, "sac", tiny_sac, resume=True)
    assert resumed.steps == 400 and math.isfinite(resumed.final_eval.mean_return)


class NanResetPendulum(gym.Wrapper):
    """Pendulum-v1 whose reset observation is NaN."""

    def __init__(self) -> None:
        super().__init__(gym.make("Pendulum-v1"))

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        return np.full_like(obs, np.nan), info


def test_non_finite_reset_observation_stops_the_run_clearly(
    make_train_cfg: Callable[..., TrainConfig], tiny_sac: SACConfig
) -> None:
    env_id = "RobotRLTest/NanResetPendulum-v0"
    gym.register(id=env_id, entry_point=NanResetPendulum, disable_env_checker=True)
    try:
        with pytest.raises(RuntimeError, match="non-finite observation on reset"):
            train(make_train_cfg("nanreset", env=env_id, total_steps=50), "sac", tiny_sac)
    finally:
        gym.registry.pop(env_id, None)


def test_resaving_an_existing_step_keeps_a_valid_checkpoint(tmp_path: Any) -> None:
    model = {"w": torch.ones(3)}
    ckpt.save_checkpoint(tmp_path, 10, model, {"d": torch.zeros(1)}, {})
    ckpt.save_checkpoint(tmp_path, 10, {"w": torch.full((3,), 2.0)}, {"d": torch.zeros(1)}, {})
    path = ckpt.latest_checkpoint(tmp_path)
    assert path is not None
    assert torch.equal(ckpt.load_checkpoint(path).model["w"], torch.full((3,), 2.0))
    assert not any(p.name.startswith(".old-") for p in tmp_path.iterdir())
