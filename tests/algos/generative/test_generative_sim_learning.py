"""Every chunk learner imitates a small fixed set of scripted-expert episodes well enough to succeed on an easy sim
task (PandaReach in MuJoCo), trained by the offline driver the CLI uses and evaluated the way `robot-rl train`
evaluates: receding horizon with the observation history (`PolicyActor`), seeded episodes.

Doing nothing fails this task (tests/sim/test_experts.py), so a success rate here means the policy learned to
reach. The real learning figures, on harder tasks, are bench/generative_success.py's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from robot_rl.algos.registry import get_algorithm
from robot_rl.data.datasets import write_dataset
from robot_rl.data.datasets.sources.expert import SOURCE, expert_episodes
from robot_rl.train.config import TrainConfig
from robot_rl.train.loop import train

ENV = "robot_rl/PandaReach-v0"
EPISODES = 20
"""Expert episodes in the fixed dataset."""
UPDATES = 1000
EVAL_EPISODES = 10
MIN_SUCCESS = 0.7
SMALL = {
    "chunk_size": 8,
    "execution_horizon": 4,
    "obs_history": 2,
    "width": 128,
    "depth": 2,
    "cond_width": 64,
    "time_dim": 32,
    "batch_size": 128,
    "lr": 1e-3,
    "ema_decay": 0.99,
}
"""A CPU-sized chunk policy (the defaults are Diffusion Policy's sizes, for the benchmark)."""


@pytest.fixture(scope="module")
def reach_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reach") / "expert"
    spec, episodes = expert_episodes(ENV, EPISODES, seed=0)
    assert all(e.success for e in episodes)
    write_dataset(out, episodes, spec, source=SOURCE, overwrite=True)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bc", "diffusion", "flow", "meanflow"])
def test_chunk_learner_succeeds_on_reach_from_a_few_expert_episodes(
    name: str, reach_dataset: Path, tmp_path: Path
) -> None:
    default = get_algorithm(name).default_config()
    fields = {f.name for f in dataclasses.fields(default)}
    cfg = dataclasses.replace(default, **{k: v for k, v in SMALL.items() if k in fields})
    assert cfg.chunk_size == 8  # bc too: the chunked MLP baseline
    run = TrainConfig(
        env=ENV,
        data="offline",
        dataset=str(reach_dataset),
        total_steps=UPDATES,
        seed=0,
        eval_every=0,
        eval_episodes=EVAL_EPISODES,
        checkpoint_every=0,
        out_dir=tmp_path,
        run_name=name,
        torch_threads=1,
        log_every=UPDATES,
        progress=False,
        tensorboard=False,
    )
    result = train(run, name, cfg)
    assert result.steps == UPDATES
    rate = result.final_eval.success_rate
    assert rate >= MIN_SUCCESS, f"{name}: success {rate:.2f} < {MIN_SUCCESS} after {UPDATES} updates"
