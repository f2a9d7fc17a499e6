"""DeployablePolicy: TanhPolicy is one; PolicyActor drives plain, history, chunked and noise-input policies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.nets.deployable import DeployablePolicy, as_module, output_shape
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.nets.policy import TanhPolicy
from robot_rl.train.policy_actor import PolicyActor


class ChunkSampler(nn.Module):
    """A fake sampler: T_o = 2 observations of size 3 in, H = 3 actions of size 1 out, noise `[B, 3, 1]` in.

    Chunk step h returns `100 h + obs_old[0] + 10 obs_new[0] + noise[h]`, so a test can read which observations,
    which step and which noise produced each action.
    """

    obs_history = 2
    chunk_size = 3
    noise_shape: tuple[int, ...] | None = (3, 1)

    def __init__(self, spec: PolicySpec) -> None:
        super().__init__()
        self.spec = spec
        self.calls = 0

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        assert noise is not None and obs.shape == (1, 6) and noise.shape == (1, 3, 1)
        self.calls += 1
        base = obs[:, 0] + 10 * obs[:, 3]
        steps = 100 * torch.arange(3, dtype=torch.float32)
        return (base[:, None] + steps[None, :])[..., None] + noise


def test_tanh_policy_is_a_plain_deployable_policy(pendulum_spec: PolicySpec) -> None:
    policy = TanhPolicy(pendulum_spec, ObsNormalizer(3), nn.Linear(3, 1))
    assert isinstance(policy, DeployablePolicy)
    assert (policy.obs_history, policy.chunk_size, policy.noise_shape) == (1, 1, None)
    assert as_module(policy) is policy and output_shape(policy, 5) == (5, 1)
    with pytest.raises(ValueError, match="takes no noise"):
        policy(torch.zeros(2, 3), torch.zeros(2, 1))
    with pytest.raises(TypeError, match=r"nn\.Module"):
        as_module(object())  # type: ignore[arg-type]


def test_plain_policy_actor_is_one_forward_per_step(pendulum_spec: PolicySpec) -> None:
    torch.manual_seed(0)
    policy = TanhPolicy(pendulum_spec, ObsNormalizer(3), nn.Linear(3, 1))
    actor = PolicyActor(policy)
    obs = np.array([0.3, -0.2, 1.5], np.float32)
    with torch.inference_mode():
        expected = policy(torch.from_numpy(obs)[None])[0].numpy()
    np.testing.assert_array_equal(actor.act(obs), expected)


def test_chunked_history_sampler_executes_its_chunk_with_seeded_noise(pendulum_spec: PolicySpec) -> None:
    policy = ChunkSampler(pendulum_spec)
    assert isinstance(policy, DeployablePolicy) and output_shape(policy, 4) == (4, 3, 1)
    actor = PolicyActor(policy, seed=5, execution_horizon=2)
    gen = torch.Generator().manual_seed(5)
    noise, noise2 = (torch.randn((1, 3, 1), generator=gen)[0, :, 0].numpy() for _ in range(2))

    def obs(i: float) -> np.ndarray:
        return np.array([i, 0.0, 0.0], np.float32)

    actor.reset()
    a0, a1 = actor.act(obs(1)), actor.act(obs(2))  # one forward on history [1, 1] (first obs repeated)
    assert policy.calls == 1
    np.testing.assert_allclose([a0[0], a1[0]], [1 + 10 + noise[0], 100 + 1 + 10 + noise[1]], rtol=1e-6)
    a2 = actor.act(obs(3))  # horizon 2 spent: re-plan on history [2, 3]
    assert policy.calls == 2 and a2.shape == (1,)
    np.testing.assert_allclose(a2, [2 + 30 + noise2[0]], rtol=1e-6)  # step 0 of the new chunk, the next noise
    actor.reset()
    actor.act(obs(7))
    assert policy.calls == 3  # a new episode re-plans at once
    with pytest.raises(ValueError, match="execution horizon"):
        PolicyActor(policy, execution_horizon=4)


def test_noise_scale_multiplies_the_sampler_noise(pendulum_spec: PolicySpec) -> None:
    """noise_scale 0 runs every chunk from zero noise; 0.5 halves the seeded draw; bad scales are refused."""
    obs = np.array([1.0, 0.0, 0.0], np.float32)
    noise = torch.randn((1, 3, 1), generator=torch.Generator().manual_seed(5))[0, 0, 0].item()
    for scale in (0.0, 0.5):
        policy = ChunkSampler(pendulum_spec)
        actor = PolicyActor(policy, seed=5, noise_scale=scale)
        np.testing.assert_allclose(actor.act(obs), [1 + 10 + scale * noise], rtol=1e-6)
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="noise_scale"):
            PolicyActor(ChunkSampler(pendulum_spec), noise_scale=bad)
