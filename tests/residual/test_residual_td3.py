"""Residual TD3 on a frozen base: it starts exactly at the base, its losses move only their own networks, a run
records its base and refuses to resume on another, and it corrects a deliberately biased base."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.algos.registry import make_algorithm
from robot_rl.algos.residual import ResidualConfig, ResidualSAC, ResidualSACConfig, ResidualTD3
from robot_rl.cli import main
from robot_rl.core.fileio import sha256_file
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.train.envs import make_env, policy_spec_for
from robot_rl.train.evaluate import evaluate

CARTPOLE = "robot_rl/CartPoleBalance-v0"
OBS, A = 4, 2
SPEC = PolicySpec(ObservationSpec.flat(OBS + A), ActionSpec(low=(-2.0, -1.0), high=(2.0, 3.0)), control_hz=50.0)


def biased_lqr_bundle(out: Path, bias: float) -> Path:
    """The cart-pole LQR expert as a bundle whose force carries a constant bias (tanh(Kx/60 + bias) · 60 N): it
    still balances, but drifts and pays for it; a residual must learn to cancel the bias."""
    from robot_rl.export.onnx_export import export_policy
    from robot_rl.nets.normalizer import ObsNormalizer
    from robot_rl.nets.policy import TanhPolicy
    from sim.experts import CartPoleExpert

    env = make_env(CARTPOLE)
    spec = policy_spec_for(env, CARTPOLE)
    env.close()
    linear = torch.nn.Linear(4, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(CartPoleExpert.gains / 60.0, dtype=torch.float32).reshape(1, 4))
        linear.bias.fill_(bias)
    policy = TanhPolicy(spec, ObsNormalizer(4, enabled=False), linear).eval()
    export_policy(policy, out, training_config={"algo": "test"}, extra={"source": "tests/residual"})
    return out


def _batch(seed: int, n: int = 64) -> Batch[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs, next_obs = torch.randn(n, OBS + A, generator=g), torch.randn(n, OBS + A, generator=g)
    obs[:, -A:] = obs[:, -A:].clamp(-1, 1)
    next_obs[:, -A:] = next_obs[:, -A:].clamp(-1, 1)
    action = torch.rand(n, A, generator=g) * 2 - 1
    reward, zeros = torch.randn(n, generator=g), torch.zeros(n)
    return Batch(obs, action, reward, next_obs, zeros, zeros)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


LEARNERS = {"residual": ResidualConfig, "residual_sac": ResidualSACConfig}
"""Both residual learners: TD3 and SAC."""


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_an_untrained_residual_is_exactly_the_base(name: str) -> None:
    """Zero-initialized mean: the deployable policy returns the base's proposal in physical units, and
    deterministic acting returns the proposal itself, for any observation."""
    algo = make_algorithm(name, SPEC, LEARNERS[name](actor_hidden=(32,), critic_hidden=(32,)))
    obs = torch.randn(50, OBS + A) * 3
    obs[:, -A:] = torch.rand(50, A) * 2 - 1
    with torch.no_grad():
        physical = algo.policy()(obs)
    torch.testing.assert_close(physical, torch.as_tensor(SPEC.action.to_physical(obs[:, -A:].numpy())))
    np.testing.assert_array_equal(algo.act(obs.numpy(), deterministic=True), obs[:, -A:].numpy())
    noisy = algo.act(obs.numpy(), deterministic=False)
    assert np.all(np.abs(noisy - obs[:, -A:].numpy()) <= 0.2 + 1e-6)  # exploration within residual_scale
    assert not np.allclose(noisy, obs[:, -A:].numpy())


def test_the_correction_is_bounded_by_the_residual_scale_and_the_action_range() -> None:
    algo = make_algorithm("residual", SPEC, ResidualConfig(actor_hidden=(32,), critic_hidden=(32,), residual_scale=0.3))
    assert isinstance(algo, ResidualTD3)
    with torch.no_grad():
        for p in algo.actor.parameters():
            p.normal_(0, 5.0)  # a saturated actor: |tanh| ≈ 1
    obs = torch.randn(200, OBS + A)
    obs[:, -A:] = torch.rand(200, A) * 2 - 1
    out = algo.act(obs.numpy(), deterministic=True)
    base = obs[:, -A:].numpy()
    assert np.all(np.abs(out - base) <= 0.3 + 1e-6) and np.all(np.abs(out) <= 1.0)
    assert np.abs(out - base).max() > 0.25


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_critic_warmup_then_each_loss_moves_only_its_own_network(name: str) -> None:
    """During the critic warm-up the actor does not move; afterwards an actor step changes the actor, and the
    critic's weights change only through the critic loss (the actor loss leaves no gradient on them)."""
    cfg = LEARNERS[name](actor_hidden=(32,), critic_hidden=(32,), policy_delay=1, critic_warmup_updates=3)
    algo = make_algorithm(name, SPEC, cfg)
    assert isinstance(algo, ResidualTD3 | ResidualSAC)
    actor0, critic0 = _params(algo.actor), _params(algo.critic)
    for i in range(3):
        stats = algo.update(iter([_batch(i)]))
        assert "loss/actor" not in stats.values
    assert _same(actor0, _params(algo.actor)) and not _same(critic0, _params(algo.critic))

    # One more update: critic step, then the first actor step. Replay the critic step alone on a copy to see that
    # the actor step added nothing to the critic.
    twin = make_algorithm(name, SPEC, cfg)
    assert isinstance(twin, ResidualTD3 | ResidualSAC)
    twin.load_state_tensors(algo.state_tensors(), algo.state_meta())
    no_actor = dataclasses.replace(cfg, critic_warmup_updates=10**9)  # the same update without the actor step
    twin.cfg = no_actor
    if isinstance(twin, ResidualSAC):
        twin.scfg = no_actor  # type: ignore[assignment]
    torch.manual_seed(7)
    stats = algo.update(iter([_batch(3)]))
    torch.manual_seed(7)
    twin.update(iter([_batch(3)]))
    assert "loss/actor" in stats.values
    assert not _same(actor0, _params(algo.actor))
    assert _same(_params(algo.critic), _params(twin.critic))


def _train_args(
    out: Path, name: str, base: Path, steps: int, extra: list[str] | None = None, eval_episodes: int = 2
) -> list[str]:
    args = ["train", "residual", "--env", CARTPOLE, "--base", str(base), "--total-steps", str(steps)]
    args += ["--learning-starts", "200", "--out-dir", str(out), "--run-name", name]
    args += ["--eval-episodes", str(eval_episodes)]
    return [*args, "--no-progress", *(extra or [])]


def test_a_run_records_its_base_and_refuses_to_resume_on_another(tmp_path: Path) -> None:
    base = biased_lqr_bundle(tmp_path / "base", 0.3)
    runs = tmp_path / "runs"
    assert main(_train_args(runs, "r", base, 300, ["--checkpoint-every", "300", "--eval-every", "0"])) == 0
    recorded = json.loads((runs / "r" / "config.json").read_text())["base"]
    assert recorded["kind"] == "bundle"
    assert recorded["identity"] == f"bundle:sha256:{OnnxPolicy.load(base).manifest.onnx_sha256}"
    assert main(_train_args(runs, "r", base, 400, ["--resume"])) == 0  # the same base: resumes
    shutil.rmtree(base)
    biased_lqr_bundle(base, 0.5)  # another policy at the same path
    assert main(_train_args(runs, "r", base, 500, ["--resume"])) != 0


def test_recorded_episodes_are_replayed_through_the_base_for_mixed_training(tmp_path: Path) -> None:
    """Base rollouts recorded as a dataset train a residual with `--data mixed`: the dataset's observations get
    the base's proposals (the run starts and finishes); an expert base cannot replay a recording and is refused."""
    base = biased_lqr_bundle(tmp_path / "base", 0.3)
    data = tmp_path / "rollouts"
    assert (
        main(["dataset", "rollout", "--policy", str(base), "--episodes", "2", "--out", str(data), "--no-progress"]) == 0
    )
    mixed = ["--data", "mixed", "--dataset", str(data), "--demo-ratio", "0.5", "--eval-every", "0"]
    assert main(_train_args(tmp_path / "runs", "mixed", base, 300, mixed)) == 0
    config = json.loads((tmp_path / "runs" / "mixed" / "config.json").read_text())
    assert config["dataset"]["transitions"] == 500 and config["policy_spec"]["observation"]["shapes"] == [[5]]
    expert = ["train", "residual", "--env", CARTPOLE, "--base", "expert", "--total-steps", "100", "--no-progress"]
    expert += ["--data", "offline", "--dataset", str(data), "--out-dir", str(tmp_path / "runs")]
    assert main(expert) != 0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_the_residual_corrects_a_biased_base(name: str, tmp_path: Path) -> None:
    """The LQR cart-pole controller with a large constant force bias balances but drifts (low return); 4,000
    steps of residual TD3 recover most of the return, and the base's files are unchanged by training."""
    base = biased_lqr_bundle(tmp_path / "base", 0.7)
    before = {p.name: sha256_file(p) for p in base.iterdir() if p.is_file()}
    policy = OnnxPolicy.load(base)
    base_eval = evaluate(policy.act, CARTPOLE, 10, seed=0, on_reset=policy.reset)
    runs = tmp_path / "runs"
    extra = ["--residual-scale", "0.5", "--eval-every", "0", "--checkpoint-every", "0", "--seed", "0"]
    args = _train_args(runs, "fix", base, 4000, extra, eval_episodes=10)
    assert main([args[0], name, *args[2:]]) == 0
    summary: dict[str, Any] = json.loads((runs / "fix" / "summary.json").read_text())
    final = float(summary["final_eval_mean_return"])
    print(f"biased base {base_eval.mean_return:.1f} -> {name} {final:.1f}")
    assert final >= base_eval.mean_return + 60.0, (base_eval.mean_return, final)
    assert before == {p.name: sha256_file(p) for p in base.iterdir() if p.is_file()}
