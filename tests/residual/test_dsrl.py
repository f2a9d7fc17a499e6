"""Noise-space steering (DSRL) of a frozen flow policy: the agent's step plans the base's chunk from the chosen
noise and executes H_a of it; SAC trains on that view; a run on a training-run base exports as one chunked bundle
(noise actor and sampler in one graph, no noise input)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robot_rl.cli import main
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.residual.base import BaseError
from robot_rl.residual.noise_space import NoiseSpaceEnv, SamplerBase
from robot_rl.train.envs import make_env
from robot_rl.train.from_run import load_run_policy
from tests.algos.generative.test_generative_train_cli import _args, pendulum_dataset  # noqa: F401 (fixture)

PENDULUM = "Pendulum-v1"


@pytest.fixture(scope="module")
def flow_base(pendulum_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # noqa: F811
    """A small flow policy on Pendulum (H = 4, H_a = 2, T_o = 2, K = 2): its run directory and its bundle."""
    runs = tmp_path_factory.mktemp("flow")
    assert main(_args("flow", pendulum_dataset, runs, 40)) == 0
    bundle = runs / "bundle"
    assert main(["export", str(runs / "flow"), "--out", str(bundle), "--parity-samples", "2000"]) == 0
    return runs / "flow", bundle


def test_a_noise_space_step_executes_the_bases_chunk_for_that_noise(flow_base: tuple[Path, Path]) -> None:
    _, bundle = flow_base
    base = SamplerBase(str(bundle))
    assert base.noise_shape == (4, 1) and base.spec.executed_per_chunk == 2
    view_env = NoiseSpaceEnv(make_env(PENDULUM), base, noise_scale=1.5)
    assert view_env.observation_space.shape == (6,) and view_env.action_space.shape == (4,)
    obs, _ = view_env.reset(seed=3)
    noise = np.array([0.5, -1.0, 0.2, 3.0], np.float32)  # the last element is beyond the scale: clipped to 1.5

    plain = make_env(PENDULUM)
    raw, _ = plain.reset(seed=3)
    history = np.concatenate([raw, raw]).astype(np.float32)
    np.testing.assert_array_equal(obs, history)
    chunk = OnnxPolicy.load(bundle).plan(history, np.array([0.5, -1.0, 0.2, 1.5], np.float32).reshape(4, 1))
    expected_reward = 0.0
    for a in chunk[:2]:
        raw_next, r, _, _, _ = plain.step(a)
        expected_reward += float(r)
    nxt, reward, terminated, truncated, info = view_env.step(noise)
    assert info["chunk_steps"] == 2 and not terminated and not truncated
    np.testing.assert_allclose(reward, expected_reward, rtol=1e-6)
    np.testing.assert_allclose(nxt[-3:], raw_next, rtol=1e-6)  # the newest observation is last in the history
    assert view_env.last_chunk is not None
    np.testing.assert_allclose(view_env.last_chunk, chunk, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not finite"):
        view_env.step(np.full(4, np.nan, np.float32))
    view_env.close()
    plain.close()


def test_dsrl_trains_on_a_flow_run_and_exports_one_chunked_bundle(flow_base: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, _ = flow_base
    args = ["train", "dsrl", "--env", PENDULUM, "--base", str(run_dir), "--total-steps", "120"]
    args += ["--learning-starts", "40"]
    args += ["--out-dir", str(tmp_path), "--run-name", "dsrl", "--eval-every", "60", "--eval-episodes", "1"]
    assert main([*args, "--no-progress"]) == 0
    config = json.loads((tmp_path / "dsrl" / "config.json").read_text())
    assert config["base"]["view"] == "noise" and config["base"]["kind"] == "run"
    assert config["policy_spec"]["action"]["high"] == [1.5] * 4
    bundle = tmp_path / "bundle"
    assert main(["export", str(tmp_path / "dsrl"), "--out", str(bundle), "--parity-samples", "2000"]) == 0
    policy = OnnxPolicy.load(bundle)
    assert policy.noise_shape is None and policy.spec.chunk_size == 4 and policy.spec.obs_history == 2
    obs = np.zeros(3, np.float32)
    policy.reset()
    assert policy.act(obs).shape == (1,)
    composite = load_run_policy(tmp_path / "dsrl").policy
    history = np.zeros((1, 6), np.float32)
    import torch

    with torch.no_grad():
        np.testing.assert_allclose(policy.plan(history[0]), composite(torch.from_numpy(history))[0].numpy(), atol=1e-4)


def test_dsrl_on_a_flow_bundle_exports_the_noise_actor_on_the_pinned_base_bundle(
    flow_base: tuple[Path, Path], tmp_path: Path
) -> None:
    import torch

    _, base_bundle = flow_base
    args = ["train", "dsrl", "--env", PENDULUM, "--base", str(base_bundle), "--total-steps", "120"]
    args += ["--learning-starts", "40", "--out-dir", str(tmp_path), "--run-name", "dsrl", "--eval-every", "0"]
    assert main([*args, "--eval-episodes", "1", "--no-progress"]) == 0
    assert json.loads((tmp_path / "dsrl" / "config.json").read_text())["base"]["kind"] == "bundle"
    bundle = tmp_path / "bundle"
    assert main(["export", str(tmp_path / "dsrl"), "--out", str(bundle), "--parity-samples", "2000"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["base"]["feeds"] == "noise" and manifest["output_shape"] == ["batch", 4]
    assert manifest["parity"]["end_to_end"]["n_histories"] >= 2000
    policy = OnnxPolicy.load(bundle)
    assert policy.noise_shape is None and policy.spec.chunk_size == 4 and policy.spec.obs_history == 2
    # the chunk is the base bundle's for the noise the trained actor chooses
    actor = load_run_policy(tmp_path / "dsrl", compose=False).policy
    base = OnnxPolicy.load(base_bundle)
    history = np.random.default_rng(1).normal(size=6).astype(np.float32)
    with torch.no_grad():
        noise = actor(torch.from_numpy(history)[None])[0].numpy().reshape(4, 1)
    np.testing.assert_allclose(policy.plan(history), base.plan(history, noise), atol=1e-5)
    with pytest.raises(ValueError, match="chooses its base's noise itself"):
        policy.plan(history, noise)
    policy.reset()
    assert policy.act(np.zeros(3, np.float32)).shape == (1,)


def test_dsrl_refuses_bases_without_a_sampler(tmp_path: Path) -> None:
    with pytest.raises(BaseError, match="generative base"):
        SamplerBase("expert")
    args = ["train", "dsrl", "--env", PENDULUM, "--base", "expert", "--total-steps", "50", "--no-progress"]
    assert main([*args, "--out-dir", str(tmp_path)]) != 0


def test_a_chunked_flow_bundle_as_a_residual_base_proposes_its_chunk_elements_in_order(
    flow_base: tuple[Path, Path],
) -> None:
    """A generative chunk policy can be a residual's base: the proposal view asks it once per step, so it executes
    H_a elements of each chunk before replanning, exactly as the bundle does on its own (same seeded noise)."""
    from robot_rl.residual.base import load_base
    from robot_rl.residual.proposals import BaseProposalObservation

    _, bundle = flow_base
    env = make_env(PENDULUM)
    base = load_base(str(bundle), env, PENDULUM, seed=4)
    view = BaseProposalObservation(env, base)
    own = OnnxPolicy.load(bundle, seed=4)
    plain = make_env(PENDULUM)
    obs, _ = view.reset(seed=2)
    raw, _ = plain.reset(seed=2)
    own.reset()
    for _ in range(7):  # more than one chunk (H_a = 2)
        action = own.act(raw.astype(np.float32))
        np.testing.assert_allclose(obs[-1:], own.spec.action.to_normalized(action), rtol=1e-5, atol=1e-6)
        obs, *_ = view.step(action)
        raw, *_ = plain.step(action)
    env.close()
    plain.close()
