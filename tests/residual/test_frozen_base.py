"""Frozen bases (bundle, run, scripted expert) and the env view with their proposals: executing the proposal is
exactly the base's own behaviour, identities name the exact policy, and bad references fail clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_rl.data.datasets.sources.env_rollout import rollout_episode
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.residual.base import BaseError, FrozenBase, base_record, check_same_base, load_base, parse_base_ref
from robot_rl.residual.proposals import BaseProposalObservation, episode_with_proposals
from robot_rl.train.envs import make_env, policy_spec_for

CARTPOLE = "robot_rl/CartPoleBalance-v0"
REACH = "robot_rl/PandaReach-v0"


def _run_on_proposals(env: Any, seed: int, steps: int) -> tuple[list[np.ndarray], list[float], bool]:
    """Drive the proposal view by executing each proposal as it is (a zero residual): the observations seen,
    the rewards, and whether the episode ended."""
    spec = policy_spec_for(env.env, "")  # the inner env's action map (the view only adds observations)
    obs, _ = env.reset(seed=seed)
    seen, rewards, done = [obs], [], False
    for _ in range(steps):
        proposal = obs[-spec.action.dim :]
        obs, reward, terminated, truncated, _ = env.step(spec.action.to_physical(proposal))
        seen.append(obs)
        rewards.append(float(reward))
        if terminated or truncated:
            done = True
            break
    return seen, rewards, done


def test_a_bundle_base_executed_as_proposed_is_the_bundle_itself(cartpole_lqr_bundle: Path) -> None:
    """The proposal view with the LQR bundle as base, each proposal executed unchanged, retraces the episode the
    bundle produces on its own (same seed), up to the float32 rounding of the physical → normalized → physical
    round trip: a residual learner starts at the base's behaviour."""
    env = make_env(CARTPOLE)
    own = rollout_episode(env, OnnxPolicy.load(cartpole_lqr_bundle).act, seed=3, source="test")
    base = load_base(str(cartpole_lqr_bundle), env, CARTPOLE)
    assert base.kind == "bundle" and isinstance(base, FrozenBase)
    wrapped = BaseProposalObservation(env, base)
    obs_dim = env.observation_space.shape[0]
    assert wrapped.observation_space.shape == (obs_dim + base.action_dim,)
    seen, rewards, _ = _run_on_proposals(wrapped, seed=3, steps=len(own))
    assert len(seen) == len(own.observations)
    np.testing.assert_allclose(np.stack(seen)[:, :obs_dim], own.observations, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rewards, own.rewards, rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(np.stack(seen)[:, obs_dim:]) <= 1.0)  # proposals are normalized actions
    env.close()


def test_an_expert_base_is_stepped_once_per_control_step_and_reset_per_episode() -> None:
    """The reach expert through the proposal view succeeds as the expert does, in two episodes in a row (the
    base is reset at each env reset)."""
    env = make_env(REACH)
    base = load_base("expert", env, REACH)
    assert base.identity == f"expert:{REACH}"
    calls: list[str] = []
    propose, reset = base.propose, base.reset
    base.propose = lambda obs: (calls.append("propose"), propose(obs))[1]  # type: ignore[method-assign]
    base.reset = lambda: (calls.append("reset"), reset())[0]  # type: ignore[method-assign,func-returns-value]
    wrapped = BaseProposalObservation(env, base)
    for seed in (0, 1):
        calls.clear()
        seen, _, done = _run_on_proposals(wrapped, seed=seed, steps=400)
        assert len(seen) == calls.count("propose")
        assert calls[0] == "reset" and calls.count("reset") == 1 and done
    env.close()


def test_the_reach_expert_through_the_view_reaches_its_goal() -> None:
    env = make_env(REACH)
    wrapped = BaseProposalObservation(env, load_base("expert", env, REACH))
    spec = policy_spec_for(env, REACH)
    obs, _ = wrapped.reset(seed=4)
    info: dict[str, Any] = {}
    for _ in range(400):
        obs, _, terminated, truncated, info = wrapped.step(spec.action.to_physical(obs[-spec.action.dim :]))
        if terminated or truncated:
            break
    assert info["is_success"], "the expert, executed through its proposals, should reach the goal"
    env.close()


def test_a_run_base_is_identified_by_its_weights_and_a_resume_refuses_another(tmp_path: Path) -> None:
    """A finished run as base: its identity is the checkpoint weights' sha256; a copy of the run with changed
    weights is another base, and `check_same_base` refuses it with both identities in the message."""
    from robot_rl.cli import main

    runs = tmp_path / "runs"
    args = ["train", "sac", "--env", CARTPOLE, "--total-steps", "300", "--learning-starts", "100"]
    args += ["--out-dir", str(runs), "--run-name", "base", "--eval-every", "0", "--checkpoint-every", "0"]
    assert main([*args, "--eval-episodes", "1", "--no-progress"]) == 0
    env = make_env(CARTPOLE)
    base = load_base(str(runs / "base"), env, CARTPOLE)
    assert base.kind == "run" and base.identity.startswith("run:sha256:")
    obs, _ = env.reset(seed=0)
    proposal = base.propose(obs.astype(np.float32))
    assert proposal.shape == (1,) and np.all(np.abs(proposal) <= 1.0)
    record = base_record(base, str(runs / "base"))
    check_same_base(json.loads(json.dumps(record)), base.identity)  # the same run: accepted

    other = tmp_path / "other"
    shutil.copytree(runs / "base", other)
    ckpt = sorted((other / "checkpoints").iterdir())[-1]
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(ckpt / "model.safetensors"))
    key = next(k for k in tensors if k.startswith("actor"))
    tensors[key] = tensors[key] + 0.5
    save_file(tensors, str(ckpt / "model.safetensors"))
    state = json.loads((ckpt / "state.json").read_text())
    from robot_rl.core.fileio import sha256_file

    state["sha256"]["model.safetensors"] = sha256_file(ckpt / "model.safetensors")
    (ckpt / "state.json").write_text(json.dumps(state))
    changed = load_base(str(other), env, CARTPOLE)
    assert changed.identity != base.identity
    with pytest.raises(BaseError, match="differs from the one this run was trained on"):
        check_same_base(record, changed.identity)
    env.close()


def test_episode_proposals_replay_the_base_in_order(cartpole_lqr_bundle: Path) -> None:
    """A recorded episode gets the base's proposal for every observation (the final one too), asked in time
    order after a reset: the same proposals the live view produced."""
    env = make_env(CARTPOLE)
    base = load_base(str(cartpole_lqr_bundle), env, CARTPOLE)
    episode = rollout_episode(env, OnnxPolicy.load(cartpole_lqr_bundle).act, seed=5, source="test")
    augmented = episode_with_proposals(episode, base)
    assert augmented.observations.shape == (len(episode) + 1, episode.observations.shape[1] + 1)
    np.testing.assert_array_equal(augmented.observations[:, :-1], episode.observations)
    view = BaseProposalObservation(env, base)  # live, driven by the episode's own actions: the same states
    live = [view.reset(seed=5)[0]] + [view.step(a)[0] for a in episode.actions]
    np.testing.assert_array_equal(augmented.observations, np.stack(live))
    np.testing.assert_array_equal(augmented.actions, episode.actions)
    env.close()


def test_bad_base_references_fail_clearly(tmp_path: Path, cartpole_lqr_bundle: Path) -> None:
    with pytest.raises(BaseError, match="no base given"):
        parse_base_ref("")
    with pytest.raises(BaseError, match="does not exist"):
        parse_base_ref(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaseError, match="neither a bundle"):
        parse_base_ref(str(tmp_path / "empty"))
    env = make_env(REACH)
    with pytest.raises(BaseError, match="takes 4 observations"):  # the cart-pole bundle on the Panda
        load_base(str(cartpole_lqr_bundle), env, REACH)
    env.close()
    tampered = tmp_path / "tampered"
    shutil.copytree(cartpole_lqr_bundle, tampered)
    onnx = next(tampered.glob("*.onnx"))
    onnx.write_bytes(onnx.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(ValueError):  # the bundle's own verification refuses it
        load_base(str(tampered), make_env(CARTPOLE), CARTPOLE)


def test_a_non_finite_proposal_is_an_error_not_a_clipped_action() -> None:
    env = make_env(REACH)
    base = load_base("expert", env, REACH)
    base.expert.act = lambda obs: np.full(7, np.nan, np.float32)  # type: ignore[attr-defined]
    wrapped = BaseProposalObservation(env, base)
    with pytest.raises(RuntimeError, match="non-finite"):
        wrapped.reset(seed=0)
    env.close()
