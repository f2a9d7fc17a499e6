"""Shared fixtures: single-threaded torch (bitwise determinism) and tiny, fast training configs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.algos.sac import SACConfig
from robot_rl.algos.td3 import TD3Config
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch
from robot_rl.train.config import TrainConfig

TINY_NET = {"actor_hidden": (32, 32), "critic_hidden": (32, 32), "batch_size": 32}


@pytest.fixture(autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """One intra-op thread: CPU reductions are then bitwise reproducible (and we share 2 cores)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture
def tiny_sac() -> SACConfig:
    """Classic SAC with small networks (fast on CPU)."""
    return SACConfig(**TINY_NET)  # type: ignore[arg-type]


@pytest.fixture
def tiny_crossq() -> SACConfig:
    """The CrossQ preset with small networks."""
    return SACConfig.preset("crossq").replace(**TINY_NET)


@pytest.fixture
def tiny_td3() -> TD3Config:
    """TD3 with small networks."""
    return TD3Config(**TINY_NET)  # type: ignore[arg-type]


@pytest.fixture
def make_train_cfg(tmp_path: Path) -> Callable[..., TrainConfig]:
    """Factory of short Pendulum-v1 runs under `tmp_path/runs`; keyword arguments override fields."""

    def make(run_name: str = "run", **overrides: Any) -> TrainConfig:
        fields: dict[str, Any] = {
            "env": "Pendulum-v1",
            "total_steps": 400,
            "learning_starts": 100,
            "eval_every": 0,
            "eval_episodes": 1,
            "tensorboard": False,
            "progress": False,
            "torch_threads": 1,
            "out_dir": tmp_path / "runs",
            "run_name": run_name,
        }
        fields.update(overrides)
        return TrainConfig(**fields)

    return make


@pytest.fixture
def pendulum_spec() -> PolicySpec:
    """The PolicySpec of Pendulum-v1: 3 observations, 1 torque in [-2, 2] N*m."""
    return PolicySpec(ObservationSpec.flat(3), ActionSpec(low=(-2.0,), high=(2.0,)), control_hz=20.0)


@pytest.fixture
def make_batch() -> Callable[..., Batch[torch.Tensor]]:
    """Factory of random torch batches for a spec; `terminated`/`truncated` may be given as arrays."""

    def make(
        spec: PolicySpec, batch_size: int = 32, seed: int = 0, terminated: Any = None, truncated: Any = None
    ) -> Batch[torch.Tensor]:
        rng = np.random.default_rng(seed)
        obs_dim, act_dim = spec.observation.dim, spec.action.dim
        term = np.zeros(batch_size) if terminated is None else np.asarray(terminated)
        trunc = np.zeros(batch_size) if truncated is None else np.asarray(truncated)
        arrays = Batch(
            obs=rng.normal(size=(batch_size, obs_dim)),
            action=rng.uniform(-1, 1, size=(batch_size, act_dim)),
            reward=rng.normal(size=batch_size),
            next_obs=rng.normal(size=(batch_size, obs_dim)),
            terminated=term,
            truncated=trunc,
        )
        return Batch(*(torch.as_tensor(np.asarray(x, np.float32)) for x in arrays[:6]))  # the six transition fields

    return make


def _export_env_bundle(
    out: Path,
    env_id: str,
    trunk_weight: Any = None,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    output_gain: float = 1.0,
) -> Path:
    """Export a real bundle for a robot_rl/* env: a linear trunk (given weight) or a small random MLP (its last
    layer scaled by `output_gain`: a large gain saturates the tanh, so the policy asks for its limits)."""
    import gymnasium as gym

    import sim  # noqa: F401  (registers the robot_rl/* ids)
    from robot_rl.export.onnx_export import export_policy
    from robot_rl.nets.normalizer import ObsNormalizer
    from robot_rl.nets.policy import TanhPolicy
    from robot_rl.train.envs import policy_spec_for

    env = gym.make(env_id, **(env_kwargs or {}))
    spec = policy_spec_for(env, env_id)
    env.close()
    torch.manual_seed(seed)
    dim, act = spec.observation.dim, spec.action.dim
    if trunk_weight is not None:
        trunk: torch.nn.Module = torch.nn.Linear(dim, act)
        with torch.no_grad():
            trunk.weight.copy_(torch.as_tensor(np.asarray(trunk_weight, np.float32).reshape(act, dim)))
            trunk.bias.zero_()
    else:
        trunk = torch.nn.Sequential(torch.nn.Linear(dim, 32), torch.nn.ReLU(), torch.nn.Linear(32, act))
        with torch.no_grad():
            trunk[2].weight.mul_(output_gain)
    policy = TanhPolicy(spec, ObsNormalizer(dim, enabled=False), trunk).eval()
    export_policy(policy, out, training_config={"algo": "test"}, extra={"source": "tests/conftest.py"})
    return out


@pytest.fixture(scope="session")
def cartpole_lqr_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cart-pole LQR expert as a real ONNX bundle: tanh(K x / 60 N) * 60 N ≈ K x near upright.

    A learned-policy stand-in that provably balances, so deployment tests can assert task success.
    """
    from sim.experts import CartPoleExpert

    return _export_env_bundle(
        tmp_path_factory.mktemp("bundles") / "cartpole_lqr",
        "robot_rl/CartPoleBalance-v0",
        trunk_weight=CartPoleExpert.gains / 60.0,
    )


@pytest.fixture(scope="session")
def reach_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained (random, small) Panda reach bundle: exercises the full observation/command path."""
    return _export_env_bundle(tmp_path_factory.mktemp("bundles") / "panda_reach", "robot_rl/PandaReach-v0")


@pytest.fixture(scope="session")
def reach_saturated_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained Panda reach bundle (joint velocities) whose outputs saturate: it keeps asking for full speed."""
    return _export_env_bundle(
        tmp_path_factory.mktemp("bundles") / "panda_reach_saturated", "robot_rl/PandaReach-v0", output_gain=20.0
    )


@pytest.fixture(scope="session")
def reach_position_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained Panda reach bundle commanding joint *positions* (position-controller deployments)."""
    return _export_env_bundle(
        tmp_path_factory.mktemp("bundles") / "panda_reach_position",
        "robot_rl/PandaReach-v0",
        env_kwargs={"interface": "joint_position"},
    )


@pytest.fixture(scope="session")
def lac_cartpole_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LAC run on the cart-pole (300 steps through `robot-rl train lac`): a learner with a Lyapunov critic."""
    from robot_rl.cli import main

    out = tmp_path_factory.mktemp("lac_runs")
    args = [
        "--env", "robot_rl/CartPoleBalance-v0", "--total-steps", "300", "--learning-starts", "100",
        "--eval-every", "0", "--eval-episodes", "1", "--log-every", "100", "--checkpoint-every", "300",
        "--no-tensorboard", "--no-progress", "--torch-threads", "1", "--actor-hidden", "32", "32",
        "--critic-hidden", "32", "32", "--critic-features", "8", "--batch-size", "32", "--out-dir", str(out),
        "--run-name", "lac",
    ]  # fmt: skip
    assert main(["train", "lac", *args]) == 0
    return out / "lac"


@pytest.fixture(scope="session")
def lac_cartpole_bundle(lac_cartpole_run: Path) -> Path:
    """That run exported by `robot-rl export` (default parity): policy.onnx plus its lyapunov.onnx."""
    from robot_rl.cli import main

    out = lac_cartpole_run.parent / "lac_bundle"
    assert main(["export", str(lac_cartpole_run), "--out", str(out)]) == 0
    return out
