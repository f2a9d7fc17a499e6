"""The deployed control step with a fake clock: configure refusals, holds, e-stop, takeover, chunks, hooks."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_rl.core.specs import PolicySpec
from robot_rl.export.errors import BundleError
from ros_nodes.core.control_step import ControlStep, HumanInput
from ros_nodes.core.deployment import PolicyNodeConfig, build_deployment

CART_JOINTS = ["slider_to_cart", "cart_to_pole"]
PERIOD = 0.02  # the cart-pole bundle runs at 50 Hz


def _cartpole(bundle: Path, **params: Any) -> ControlStep:
    dep = build_deployment({"bundle_dir": str(bundle), **params})
    step = dep.step
    step.reset()
    return step


def _feed(step: ControlStep, t: float, x: float = 0.0, theta: float = 0.05) -> None:
    assert step.assembler.update_joint_state(CART_JOINTS[::-1], [theta, x], [0.0, 0.0], arrival_s=t) is None


def test_deployment_reads_the_manifest(cartpole_lqr_bundle: Path) -> None:
    dep = build_deployment({"bundle_dir": str(cartpole_lqr_bundle)})
    assert dep.controller == "effort_controller" and dep.command_topic == "/effort_controller/commands"
    assert dep.control_hz == pytest.approx(50.0)
    assert dep.safety_config.joint_names == ("slider_to_cart",)
    assert dep.step.command is dep.policy.spec.robot.command  # one parser of the command interface
    meta = dep.episode_metadata()
    assert meta["policy_sha256"] == dep.policy.manifest.onnx_sha256 and meta["robot"] == "cartpole"
    assert meta["env_id"] == "robot_rl/CartPoleBalance-v0" and meta["command_interface"] == "effort"
    assert meta["safety_config_sha256"] == dep.safety_config.sha256()


def test_configure_refusals_say_why(cartpole_lqr_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bundle_dir is empty"):
        build_deployment({})
    with pytest.raises(BundleError, match="does not exist"):
        build_deployment({"bundle_dir": str(tmp_path / "nope")})
    with pytest.raises(BundleError, match="sha256 mismatch"):
        build_deployment({"bundle_dir": str(cartpole_lqr_bundle), "expected_sha256": "0" * 64})
    with pytest.raises(BundleError, match="robot 'cartpole'"):
        build_deployment({"bundle_dir": str(cartpole_lqr_bundle), "robot": "panda"})
    with pytest.raises(ValueError, match="joint_names"):
        build_deployment({"bundle_dir": str(cartpole_lqr_bundle), "safety.joint_names": ["other_joint"]})
    with pytest.raises(ValueError, match="trigger"):
        build_deployment({"bundle_dir": str(cartpole_lqr_bundle), "trigger": "sometimes"})
    tampered = tmp_path / "tampered"
    shutil.copytree(cartpole_lqr_bundle, tampered)
    model = tampered / "policy.onnx"
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 mismatch"):
        build_deployment({"bundle_dir": str(tampered)})


def test_a_bundle_without_a_robot_interface_is_refused(tmp_path: Path, pendulum_spec: PolicySpec) -> None:
    import torch

    from robot_rl.export.onnx_export import export_policy
    from robot_rl.nets.normalizer import ObsNormalizer
    from robot_rl.nets.policy import TanhPolicy

    bundle = tmp_path / "pendulum"
    trunk = torch.nn.Linear(pendulum_spec.observation.dim, pendulum_spec.action.dim)
    export_policy(TanhPolicy(pendulum_spec, ObsNormalizer(3, enabled=False), trunk).eval(), bundle, {"algo": "test"})
    with pytest.raises(BundleError, match=r"no robot interface \(policy_spec.robot\)"):
        build_deployment({"bundle_dir": str(bundle)})


def test_unknown_parameters_are_refused_with_the_valid_ones(cartpole_lqr_bundle: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown policy_node parameter\(s\) \['bundel_dir', 'episode_step'\]") as exc:
        build_deployment({"bundle_dir": str(cartpole_lqr_bundle), "bundel_dir": "x", "episode_step": 5})
    assert "'episode_steps'" in str(exc.value) and "safety.<field>" in str(exc.value)
    with pytest.raises(ValueError, match="velocity_limt"):  # unknown safety keys: refused by the safety config
        build_deployment({"bundle_dir": str(cartpole_lqr_bundle), "safety.velocity_limt": [1.0]})
    # rclpy's own parameters are not the node's to refuse
    params = {"bundle_dir": str(cartpole_lqr_bundle), "use_sim_time": False, "start_type_description_service": True}
    assert build_deployment(params).control_hz == pytest.approx(50.0)
    assert set(PolicyNodeConfig.parameter_defaults()) == {f.name for f in dataclasses.fields(PolicyNodeConfig)}


def test_holds_until_observed_then_follows_the_policy(cartpole_lqr_bundle: Path) -> None:
    step = _cartpole(cartpole_lqr_bundle)
    first = step.tick(0.0)
    assert first.safety_held and np.isfinite(first.executed_action).all() and first.executed_action.tolist() == [0.0]
    _feed(step, 0.01)
    res = step.tick(0.02)
    assert not res.safety_held and res.source == "policy"
    expected = 60.0 * np.tanh(558.4 * 0.05 / 60.0)  # K·x through the bundle's tanh, N
    assert res.executed_action[0] == pytest.approx(expected, rel=1e-4)
    assert res.reward_terms == {"rlif": 0.0, "success": 0.0}


def test_stale_observation_holds_within_timeout_plus_one_period(cartpole_lqr_bundle: Path) -> None:
    step = _cartpole(cartpole_lqr_bundle)
    stale_after = step.chain.config.stale_observation_periods * PERIOD
    _feed(step, 0.0)
    t, held_at = 0.0, None
    while t < 1.0:
        t += PERIOD
        if not step.tick(t).safety_held:
            continue
        held_at = t
        break
    assert held_at is not None and held_at <= stale_after + PERIOD + 1e-9
    for _ in range(3):  # stays held without fresh data
        t += PERIOD
        assert step.tick(t).safety_held
    _feed(step, t + 0.001)
    assert not step.tick(t + PERIOD).safety_held  # resumes only on fresh data


def test_estop_latches_and_release_needs_enable(cartpole_lqr_bundle: Path) -> None:
    step = _cartpole(cartpole_lqr_bundle)
    _feed(step, 0.0)
    assert not step.tick(0.0).safety_held
    step.chain.engage_estop("test")
    res = step.tick(PERIOD)
    assert res.safety_held and res.source == "estop" and res.executed_action.tolist() == [0.0]
    step.chain.release_estop()
    _feed(step, 2 * PERIOD)
    assert step.tick(2 * PERIOD).safety_held  # released is not enabled
    step.chain.enable()
    _feed(step, 3 * PERIOD)
    assert not step.tick(3 * PERIOD).safety_held


def test_human_takeover_wins_is_clipped_and_labelled(cartpole_lqr_bundle: Path) -> None:
    step = _cartpole(cartpole_lqr_bundle)
    t = 0.0
    flags, onsets, rlif = [], [], []
    for i in range(20):
        t = i * PERIOD
        _feed(step, t)
        engaged = 5 <= i < 12
        human = HumanInput(engaged, np.array([500.0]) if engaged else None, t if engaged else None)
        res = step.tick(t, human)
        flags.append(res.intervention)
        onsets.append(res.intervention_onset)
        rlif.append(res.reward_terms["rlif"])
        if engaged:
            assert res.source == "human"
            assert res.executed_action[0] <= 60.0 + 1e-9  # clipped exactly like a policy command
            assert "effort_limit" in res.safety_changed_by
    assert flags == [5 <= i < 12 for i in range(20)]
    assert onsets.count(True) == 1 and onsets[5]
    assert rlif[5] == -1.0 and sum(rlif) == -1.0


def test_engaged_human_without_fresh_command_holds_not_policy(cartpole_lqr_bundle: Path) -> None:
    step = _cartpole(cartpole_lqr_bundle)
    _feed(step, 0.0)
    res = step.tick(0.0, HumanInput(True, np.array([5.0]), -10.0))  # command 10 s old
    assert res.source == "human" and res.safety_held and res.executed_action.tolist() == [0.0]
    res = step.tick(0.0, HumanInput(True, None, None))
    assert res.safety_held and np.isnan(res.policy_action).all()


class _ChunkPolicy:
    def __init__(self, chunk: int, value: float = 0.0) -> None:
        self.chunk_size = chunk
        self.queries = 0
        self.value = value

    def plan(self, observation: np.ndarray) -> np.ndarray:
        self.queries += 1
        return np.arange(self.chunk_size, dtype=np.float64)[:, None] + self.value


def _with_policy(step: ControlStep, policy: Any, replan_every: int = 0) -> ControlStep:
    return ControlStep(policy, step.assembler, step.command, step.chain, hooks=step.hooks, replan_every=replan_every)


def test_chunks_are_executed_and_replanned_on_schedule(cartpole_lqr_bundle: Path) -> None:
    base = _cartpole(cartpole_lqr_bundle)
    policy = _ChunkPolicy(4)
    step = _with_policy(base, policy, replan_every=2)
    step.reset()
    out = []
    for i in range(6):
        _feed(step, i * PERIOD)
        out.append(step.tick(i * PERIOD).policy_action[0])
    assert out == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0] and policy.queries == 3
    with pytest.raises(ValueError, match="replan_every"):
        _with_policy(base, _ChunkPolicy(2), replan_every=3)


class _NaNPolicy:
    chunk_size = 1

    def plan(self, observation: np.ndarray) -> np.ndarray:
        return np.array([[np.nan]])


class _RaisingPolicy:
    chunk_size = 1

    def plan(self, observation: np.ndarray) -> np.ndarray:
        raise RuntimeError("policy produced a non-finite action")


@pytest.mark.parametrize("policy", [_NaNPolicy(), _RaisingPolicy()])
def test_a_failing_policy_gives_a_hold_never_nan(cartpole_lqr_bundle: Path, policy: Any) -> None:
    step = _with_policy(_cartpole(cartpole_lqr_bundle), policy)
    step.reset()
    _feed(step, 0.0)
    res = step.tick(0.0)
    assert res.safety_held and np.isfinite(res.executed_action).all()
    assert "non_finite" in res.safety_changed_by


def test_lqr_bundle_balances_the_cartpole_through_the_control_step(cartpole_lqr_bundle: Path) -> None:
    import gymnasium as gym

    import sim  # noqa: F401

    env = gym.make("robot_rl/CartPoleBalance-v0")
    step = _cartpole(cartpole_lqr_bundle)
    obs, _ = env.reset(seed=3)
    base = env.unwrapped
    successes = []
    for i in range(250):
        t = i * PERIOD
        q, qd = obs[:2], obs[2:4]
        step.assembler.update_joint_state(CART_JOINTS, q, qd, arrival_s=t)
        res = step.tick(t)
        assert not res.safety_held
        action = base.interface.to_normalized(res.executed_action)
        obs, _, terminated, truncated, info = env.step(action)
        successes.append(info["is_success"])
        if terminated or truncated:
            break
    assert not terminated and np.mean(successes[-50:]) == 1.0
