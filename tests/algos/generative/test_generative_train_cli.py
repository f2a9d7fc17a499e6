"""`robot-rl train diffusion|flow|meanflow --data offline --dataset DIR` runs, evaluates (receding horizon in sim),
checkpoints and resumes; the run's policy is the chunked sampler the spec describes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.cli import main
from robot_rl.nets.generative.chunk_policy import ChunkSamplerPolicy
from robot_rl.train.from_run import load_run_policy
from robot_rl.train.policy_actor import PolicyActor
from tests.train.pendulum_expert import expert_physical


@pytest.fixture(scope="module")
def pendulum_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 scripted-expert Pendulum-v1 episodes (600 transitions) written by the dataset writer."""
    from robot_rl.data.datasets import write_dataset
    from robot_rl.data.datasets.sources.env_rollout import rollout_episode
    from robot_rl.train.envs import make_env, policy_spec_for

    env = make_env("Pendulum-v1")
    spec = policy_spec_for(env, "Pendulum-v1")
    episodes = [rollout_episode(env, expert_physical, seed=100 + i, source="expert") for i in range(3)]
    env.close()
    out = tmp_path_factory.mktemp("data") / "pendulum"
    write_dataset(out, episodes, spec, source="expert")
    return out


def _args(name: str, dataset: Path, runs: Path, steps: int) -> list[str]:
    return [
        "train", name,
        "--data", "offline", "--dataset", str(dataset),
        "--total-steps", str(steps), "--eval-every", "0", "--eval-episodes", "1",
        "--checkpoint-every", "20", "--log-every", "10",
        "--chunk-size", "4", "--execution-horizon", "2", "--obs-history", "2",
        "--width", "32", "--depth", "1", "--cond-width", "32", "--time-dim", "16", "--batch-size", "32",
        "--sampler-steps", "2", "--torch-threads", "1",
        "--no-progress", "--no-tensorboard", "--out-dir", str(runs), "--run-name", name,
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["diffusion", "flow", "meanflow"])
def test_train_offline_through_the_cli_then_resume(name: str, pendulum_dataset: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert main(_args(name, pendulum_dataset, runs, 30)) == 0
    run = runs / name
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == name and config["dataset"]["transitions"] == 600
    assert config["algo_config"]["chunk_size"] == 4 and config["algo_config"]["obs_history"] == 2
    losses = [
        r[f"loss/{name}"]
        for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if f"loss/{name}" in r
    ]
    assert len(losses) == 3 and all(np.isfinite(losses))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 30 and np.isfinite(summary["final_eval_mean_return"])  # one full sim episode ran

    assert main([*_args(name, pendulum_dataset, runs, 40), "--resume"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 40

    policy = load_run_policy(run).policy
    assert isinstance(policy, ChunkSamplerPolicy)
    assert (policy.spec.chunk_size, policy.spec.execution_horizon, policy.spec.obs_history) == (4, 2, 2)
    # the action range was fitted to the dataset: inside the spec's [-1, 1], and not the identity
    assert float(policy.action_normalizer.count) == 600
    actor = PolicyActor(policy, seed=0)  # what evaluation runs: history kept, 2 of every 4 actions executed
    actor.reset()
    obs = np.array([1.0, 0.0, 0.0], np.float32)
    acts = [actor.act(obs) for _ in range(5)]
    assert all(a.shape == (1,) and abs(float(a[0])) <= 2.0 for a in acts)
    with torch.no_grad():  # the first two actions are the first chunk's, planned from the repeated observation
        first = policy(
            torch.from_numpy(np.tile(obs, 2))[None], torch.randn((1, 4, 1), generator=torch.Generator().manual_seed(0))
        )
    np.testing.assert_allclose(np.stack(acts[:2])[:, 0], first[0, :2, 0].numpy(), rtol=1e-6)
