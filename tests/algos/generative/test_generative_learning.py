"""Each generative learner fits a small conditional bimodal dataset (both modes, nothing in between); the
chunked MLP baseline averages the modes, which is why the generative policies exist."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.algos.bc import BCConfig
from robot_rl.algos.diffusion import DiffusionConfig
from robot_rl.algos.flow import FlowConfig
from robot_rl.algos.meanflow import MeanFlowConfig
from robot_rl.algos.registry import make_algorithm
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch

SPEC = PolicySpec(ObservationSpec.flat(1), ActionSpec(low=(-2.0,), high=(2.0,)), control_hz=10.0)
H, T_O = 4, 2
SMALL: dict[str, Any] = {
    "chunk_size": H,
    "execution_horizon": 2,
    "obs_history": T_O,
    "width": 64,
    "depth": 2,
    "cond_width": 64,
}
SMALL |= {"time_dim": 32, "batch_size": 256, "lr": 2e-3, "ema_decay": 0.99}
CONFIGS = {
    "diffusion": DiffusionConfig(**SMALL, sampler_steps=10),
    "flow": FlowConfig(**SMALL, sampler_steps=10),
    # 75% empty intervals (the MeanFlow paper's share; the default is 25%): on this toy, with this short a run,
    # the instantaneous velocity the model tangent relies on needs the larger share. The default output (the
    # chunk a jump lands on), and the paper's velocity output.
    "meanflow": MeanFlowConfig(**SMALL, sampler_steps=1, equal_fraction=0.75),
    "meanflow_velocity": MeanFlowConfig(**SMALL, sampler_steps=1, equal_fraction=0.75, prediction="velocity"),
}
UPDATES = {"diffusion": 1000, "flow": 1000, "meanflow": 3000, "meanflow_velocity": 2000, "bc": 1000}
"""Gradient steps per case: one-step MeanFlow learns the whole noise-to-action map and needs the longer run (the
velocity output's between-modes share sat at the 5% bound at 1,000 steps, the default output's at 2,000)."""


def mode_centers(x: float) -> tuple[float, float]:
    """The two equally likely normalized actions at observation x: 0.3·x ± 0.5."""
    return 0.3 * x - 0.5, 0.3 * x + 0.5


def bimodal_batches(seed: int, batch: int = 256) -> Iterator[Batch[torch.Tensor]]:
    """Chunks of one constant action, 0.3·x ± 0.5 (sign by a coin flip) plus small noise; x is the observation."""
    g = torch.Generator().manual_seed(seed)
    while True:
        x = torch.rand(batch, generator=g) * 2 - 1
        sign = torch.randint(0, 2, (batch,), generator=g).float() * 2 - 1
        a = (0.3 * x + 0.5 * sign).view(-1, 1, 1) + 0.02 * torch.randn(batch, H, 1, generator=g)
        hist = x.view(-1, 1, 1).expand(batch, T_O, 1).contiguous()
        zeros = torch.zeros(batch)
        yield Batch(hist[:, -1], a[:, 0], zeros, hist[:, -1], zeros, zeros, action_chunk=a, obs_history=hist)


def _fit(name: str, cfg: object, seed: int = 0) -> object:
    torch.manual_seed(seed)
    algo = make_algorithm(name.split("_")[0], SPEC, cfg)  # the case's learner: "meanflow_velocity" -> meanflow
    algo.observe(np.linspace(-1, 1, 101, dtype=np.float32)[:, None])
    if hasattr(algo, "observe_actions"):
        algo.observe_actions(np.array([[-0.8], [0.8]], np.float32))
    batches = bimodal_batches(seed + 1)
    for _ in range(UPDATES[name]):
        algo.update(batches)
    return algo


@pytest.mark.parametrize(
    ("name", "seed"),
    # The default MeanFlow twice: with the conditional JVP tangent and time scale 1000 it fitted seed 0 and
    # collapsed on seed 1.
    [*((n, 0) for n in sorted(CONFIGS)), ("meanflow", 1)],
)
def test_generative_learner_covers_both_modes(name: str, seed: int) -> None:
    t0 = time.perf_counter()
    algo = _fit(name, CONFIGS[name], seed)
    policy = algo.policy()  # type: ignore[attr-defined]
    gen = torch.Generator().manual_seed(5)
    for x in (-0.8, 0.0, 0.8):
        obs = torch.full((400, T_O), x)
        with torch.no_grad():
            chunks = policy(obs, torch.randn(400, H, 1, generator=gen)).numpy()[..., 0] / 2.0  # physical → norm
        lo, hi = mode_centers(x)
        near_lo = np.abs(chunks - lo) < 0.15
        near_hi = np.abs(chunks - hi) < 0.15
        share_lo, share_hi = near_lo.mean(), near_hi.mean()
        between = np.abs(chunks - 0.3 * x) < 0.25  # around the modes' average, where BC lands
        # both modes are sampled about equally, and almost nothing lands in between
        assert 0.25 < share_lo < 0.75 and 0.25 < share_hi < 0.75, (name, x, share_lo, share_hi)
        assert (near_lo | near_hi).mean() > 0.85, (name, x, (near_lo | near_hi).mean())
        assert between.mean() < 0.05, (name, x, between.mean())
        # within a chunk the action is the one mode (the data's chunks are constant)
        assert np.all(np.ptp(chunks, axis=1)[near_lo.all(1) | near_hi.all(1)] < 0.3)
    print(f"{name}: {UPDATES[name]} updates + sampling in {time.perf_counter() - t0:.1f}s")


def test_chunked_bc_averages_the_modes() -> None:
    cfg = BCConfig(actor_hidden=(64, 64), batch_size=256, lr=2e-3, chunk_size=H, execution_horizon=2, obs_history=T_O)
    algo = _fit("bc", cfg)
    policy = algo.policy()  # type: ignore[attr-defined]
    assert (policy.chunk_size, policy.obs_history, policy.noise_shape) == (H, T_O, None)
    with torch.no_grad():
        out = policy(torch.full((1, T_O), 0.8)).numpy()[0, :, 0] / 2.0
    assert out.shape == (H,)
    np.testing.assert_allclose(out, 0.3 * 0.8, atol=0.1)  # the mean of the two modes: neither is a valid action
