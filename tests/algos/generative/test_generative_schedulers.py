"""Our DDPM schedule and DDIM step against diffusers' schedulers on the same inputs (the arithmetic stays ours)."""

from __future__ import annotations

import pytest
import torch

from robot_rl.nets.generative.samplers import ddim_sample
from robot_rl.nets.generative.schedules import (
    alphas_cumprod,
    ddim_step,
    ddim_timesteps,
    ddpm_add_noise,
    squared_cosine_betas,
)

diffusers = pytest.importorskip("diffusers")

T = 100


def test_squared_cosine_alphas_cumprod_match_diffusers() -> None:
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2")
    ours = alphas_cumprod(squared_cosine_betas(T))
    torch.testing.assert_close(ours, ref.alphas_cumprod, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(squared_cosine_betas(T), ref.betas, rtol=1e-6, atol=1e-7)


def test_ddpm_forward_noising_matches_diffusers_add_noise() -> None:
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2")
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(16, 8, 3, generator=g), torch.randn(16, 8, 3, generator=g)
    t = torch.randint(0, T, (16,), generator=g)
    torch.testing.assert_close(
        ddpm_add_noise(x0, noise, t, alphas_cumprod(squared_cosine_betas(T))), ref.add_noise(x0, noise, t)
    )


@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
@pytest.mark.parametrize("clip_sample", [False, True])
@pytest.mark.parametrize("steps", [1, 10, 16])
def test_ddim_step_matches_diffusers(prediction: str, clip_sample: bool, steps: int) -> None:
    ref = diffusers.DDIMScheduler(
        num_train_timesteps=T,
        beta_schedule="squaredcos_cap_v2",
        prediction_type=prediction,
        clip_sample=clip_sample,
        set_alpha_to_one=True,
    )
    ref.set_timesteps(steps)
    assert ddim_timesteps(T, steps) == tuple(int(t) for t in ref.timesteps)
    alphas = alphas_cumprod(squared_cosine_betas(T))
    g = torch.Generator().manual_seed(steps)
    timesteps = ddim_timesteps(T, steps)
    for i, t in enumerate(timesteps):
        x, out = 2.0 * torch.randn(32, 16, 7, generator=g), 1.5 * torch.randn(32, 16, 7, generator=g)
        prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        a_prev = alphas[prev] if prev >= 0 else torch.tensor(1.0)
        ours = ddim_step(out, x, alphas[t], a_prev, prediction, clip_sample)  # type: ignore[arg-type]
        expected = ref.step(out, t, x, eta=0.0).prev_sample
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
def test_the_whole_ddim_sampler_matches_a_diffusers_loop(prediction: str) -> None:
    """Same fixed denoiser, same noise: our unrolled sampler and diffusers' step loop end at the same chunk."""
    torch.manual_seed(0)
    net = torch.nn.Linear(7, 7)

    def denoiser(x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(net(x) + 0.01 * t.view(-1, 1, 1) + cond.view(-1, 1, 1))

    ref = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", prediction_type=prediction)
    ref.set_timesteps(10)
    noise, cond = torch.randn(4, 16, 7), torch.randn(4, 1)
    with torch.no_grad():
        x = noise
        for t in ref.timesteps:
            x = ref.step(denoiser(x, torch.full((4,), float(t)), cond), int(t), x, eta=0.0).prev_sample
        alphas = [float(a) for a in alphas_cumprod(squared_cosine_betas(T))]
        ours = ddim_sample(denoiser, cond, noise, alphas, ddim_timesteps(T, 10), prediction, clip_sample=True)  # type: ignore[arg-type]
    torch.testing.assert_close(ours, x, rtol=1e-5, atol=1e-5)
