"""Behaviour cloning: offline on a scripted Pendulum controller's transitions, the policy becomes the controller."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.algos.bc import BCConfig
from robot_rl.algos.bc.losses import bc_loss
from robot_rl.algos.registry import make_algorithm
from robot_rl.core.specs import PolicySpec
from robot_rl.nets.deployable import DeployablePolicy
from robot_rl.train.config import TrainConfig
from robot_rl.train.from_run import load_run_policy
from robot_rl.train.loop import train
from tests.train.pendulum_expert import expert_buffer, expert_physical, expert_return

BC_SMALL = BCConfig(actor_hidden=(64, 64), batch_size=128, lr=3e-3)


def _held_out_states(n: int = 400) -> np.ndarray:
    """States the expert visits on episodes the dataset does not hold."""
    return expert_buffer(2, seed=900).obs[:n]


def test_offline_bc_learns_the_expert(make_train_cfg: Callable[..., TrainConfig]) -> None:
    cfg = make_train_cfg("bc", data="offline", total_steps=3000, log_every=500, eval_episodes=5)
    result = train(cfg, "bc", BC_SMALL, offline_buffer=expert_buffer(20))
    assert result.steps == 3000
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss/bc"] for r in records if "loss/bc" in r]
    assert len(losses) == 6 and losses[-1] < 2e-3 and losses[0] > 1e-2  # normalized-action MSE falls, ends low

    policy = load_run_policy(result.run_dir).policy
    assert isinstance(policy, DeployablePolicy)
    obs = _held_out_states()
    with torch.inference_mode():
        got = policy(torch.from_numpy(obs)).numpy()
    err = np.abs(got - expert_physical(obs))  # physical torques, N*m
    assert float(err.mean()) < 0.03 and float(err.max()) < 1.0, (err.mean(), err.max())
    # ... and it controls like the expert on the evaluation episodes (expert ≈ -180, random ≈ -1200).
    expert = float(np.mean(expert_return(5, cfg.seed)))
    assert abs(result.final_eval.mean_return - expert) < 30.0, (result.final_eval.mean_return, expert)


def test_bc_normalizer_takes_the_dataset_statistics(make_train_cfg: Callable[..., TrainConfig]) -> None:
    data = expert_buffer(2)
    result = train(make_train_cfg("stats", data="offline", total_steps=5), "bc", BC_SMALL, offline_buffer=data)
    normalizer = load_run_policy(result.run_dir).policy.normalizer  # type: ignore[attr-defined]
    np.testing.assert_allclose(normalizer.mean.numpy(), data.obs.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(normalizer.var.numpy(), data.obs.var(0), rtol=1e-3)


def test_bc_update_is_regression_and_checkpoints_round_trip(pendulum_spec: PolicySpec) -> None:
    torch.manual_seed(0)
    algo = make_algorithm("bc", pendulum_spec, BC_SMALL)
    data = expert_buffer(1)
    from robot_rl.train.batches import torch_batches

    batches = torch_batches(data.iterate(64, np.random.default_rng(0)))
    first = algo.update(batches).values["loss/bc"]
    for _ in range(200):
        last = algo.update(batches).values["loss/bc"]
    assert last < first / 5
    clone = make_algorithm("bc", pendulum_spec, BC_SMALL)
    clone.load_state_tensors(algo.state_tensors(), json.loads(json.dumps(algo.state_meta())))
    for k, v in algo.state_tensors().items():
        assert torch.equal(v, clone.state_tensors()[k]), k
    obs = data.obs[:8]
    np.testing.assert_array_equal(algo.act(obs, deterministic=True), clone.act(obs, deterministic=True))
    assert np.all(np.abs(algo.act(obs, deterministic=False)) <= 1.0)


def test_bc_loss_checks_shapes() -> None:
    assert float(bc_loss(torch.zeros(4, 2), torch.ones(4, 2))) == 1.0
    with pytest.raises(ValueError, match=r"pred \(4, 2\) and target \(4,\)"):
        bc_loss(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="lr must be positive"):
        BCConfig(lr=0.0)


def test_offline_bc_through_the_cli_from_a_dataset_folder(tmp_path: Path) -> None:
    try:
        from robot_rl.data.datasets import load_replay, write_dataset
        from robot_rl.data.datasets.sources.env_rollout import rollout_episode
    except ImportError as exc:  # written by another part of issue 10
        pytest.skip(f"robot_rl.data.datasets is not importable yet: {exc}")
    import gymnasium as gym

    from robot_rl.cli import main
    from robot_rl.train.envs import make_env, policy_spec_for

    env = make_env("Pendulum-v1")
    spec = policy_spec_for(env, "Pendulum-v1")
    episodes = [rollout_episode(env, expert_physical, seed=100 + i, source="expert") for i in range(5)]
    env.close()
    assert isinstance(env, gym.Env)
    write_dataset(tmp_path / "data", episodes, spec, source="expert")
    assert len(load_replay(tmp_path / "data", spec)) == 1000

    args = ["train", "bc", "--data", "offline", "--dataset", str(tmp_path / "data"), "--total-steps", "300"]
    args += ["--actor-hidden", "64", "64", "--batch-size", "128", "--eval-every", "0", "--eval-episodes", "1"]
    args += ["--no-progress", "--no-tensorboard", "--out-dir", str(tmp_path / "runs"), "--run-name", "bc"]
    assert main(args) == 0
    config = json.loads((tmp_path / "runs" / "bc" / "config.json").read_text())
    assert config["train"]["data"] == "offline" and config["dataset"]["transitions"] == 1000
    assert (tmp_path / "runs" / "bc" / "checkpoints" / "step_000000300").is_dir()


def test_bc_without_a_dataset_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from robot_rl.cli import main

    args = ["train", "bc", "--env", "Pendulum-v1", "--total-steps", "10", "--out-dir", str(tmp_path / "runs")]
    assert main([*args, "--no-progress"]) == 2
    assert "learns from recorded data: pass --data offline --dataset DIR" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
