"""Generative building blocks: loss shapes, gradient isolation, sampler determinism, the deployable chunk policy."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.algos.diffusion import DiffusionConfig
from robot_rl.algos.diffusion.losses import ddpm_loss
from robot_rl.algos.flow import FlowConfig
from robot_rl.algos.flow.losses import flow_matching_loss, interpolate
from robot_rl.algos.meanflow import MeanFlowConfig
from robot_rl.algos.meanflow.losses import meanflow_loss
from robot_rl.algos.registry import make_algorithm
from robot_rl.core.robot import normalized_to_physical
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch
from robot_rl.nets.deployable import DeployablePolicy
from robot_rl.nets.generative.chunk_policy import ChunkSamplerPolicy
from robot_rl.nets.generative.denoisers import make_denoiser
from robot_rl.nets.generative.ema import EMA
from robot_rl.nets.generative.embedding import SinusoidalEmbedding
from robot_rl.nets.generative.samplers import SAMPLER_KINDS, ChunkSampler
from robot_rl.nets.generative.schedules import alphas_cumprod, squared_cosine_betas

B, H, A, OBS, T_O = 6, 5, 2, 3, 2
SPEC = PolicySpec(ObservationSpec.flat(OBS), ActionSpec(low=(-2.0, 0.0), high=(2.0, 3.0)), control_hz=20.0)
SMALL: dict[str, Any] = {"chunk_size": H, "execution_horizon": 2, "obs_history": T_O, "width": 32, "depth": 2}
SMALL |= {"cond_width": 32}
SMALL |= {"time_dim": 16, "unet_widths": (16, 32), "batch_size": B}
CONFIGS: dict[str, Any] = {"diffusion": DiffusionConfig, "flow": FlowConfig, "meanflow": MeanFlowConfig}


def _denoiser(kind: str = "mlp", two_times: bool = False, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = make_denoiser(kind, A, H, T_O * OBS, 32, 2, (16, 32), 32, 16, 1000.0, two_times)
    for p in net.parameters():  # leave the zero-initialized output layers: give every weight a value
        torch.nn.init.normal_(p, std=0.3)
    return net


def _batch(seed: int = 0) -> Batch[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    chunk = torch.rand(B, H, A, generator=g) * 2 - 1
    hist = torch.randn(B, T_O, OBS, generator=g)
    zeros = torch.zeros(B)
    return Batch(hist[:, -1], chunk[:, 0], zeros, hist[:, -1], zeros, zeros, action_chunk=chunk, obs_history=hist)


def test_embedding_and_denoisers_have_the_documented_shapes() -> None:
    emb = SinusoidalEmbedding(16)(torch.tensor([0.0, 3.0, 999.0]))
    assert emb.shape == (3, 16) and float(emb.abs().max()) <= 1.0
    for kind in ("mlp", "unet"):
        for two in (False, True):
            net = _denoiser(kind, two)
            out = net(torch.randn(B, H, A), torch.rand(B), torch.randn(B, T_O * OBS), torch.rand(B) if two else None)
            assert out.shape == (B, H, A), (kind, two)


def test_losses_are_scalars_and_check_shapes() -> None:
    x0, noise, cond, t = torch.randn(B, H, A), torch.randn(B, H, A), torch.randn(B, T_O * OBS), torch.rand(B)
    alphas = alphas_cumprod(squared_cosine_betas(100))
    steps = torch.randint(0, 100, (B,))
    assert ddpm_loss(_denoiser(), x0, cond, noise, steps, alphas, "epsilon").shape == ()
    assert ddpm_loss(_denoiser(), x0, cond, noise, steps, alphas, "sample").shape == ()
    assert flow_matching_loss(_denoiser(), x0, cond, noise, t).shape == ()
    loss, mse = meanflow_loss(_denoiser(two_times=True), x0, cond, noise, t, t * 0.5)
    assert loss.shape == () and mse.shape == ()
    with pytest.raises(ValueError, match=r"x0 \(6, 5, 2\) and noise \(6, 10\)"):
        flow_matching_loss(_denoiser(), x0, cond, noise.view(B, -1), t)
    with pytest.raises(ValueError, match=r"t \(6, 1\)"):
        ddpm_loss(_denoiser(), x0, cond, noise, steps[:, None], alphas, "epsilon")
    with pytest.raises(ValueError, match=r"r \(5,\)"):
        meanflow_loss(_denoiser(two_times=True), x0, cond, noise, t, t[:5])


def test_an_untrained_flow_denoiser_at_zero_makes_the_flow_loss_the_velocity_norm() -> None:
    """Zero-initialized output: the loss is E‖ε − x₀‖² (the target is the path's velocity, not something else)."""
    torch.manual_seed(0)
    net = make_denoiser("mlp", A, H, T_O * OBS, 32, 2, (16,), 32, 16, 1000.0, False)
    x0, noise = torch.randn(B, H, A), torch.randn(B, H, A)
    loss = flow_matching_loss(net, x0, torch.randn(B, T_O * OBS), noise, torch.rand(B))
    torch.testing.assert_close(loss, (noise - x0).pow(2).mean())
    z = interpolate(x0, noise, torch.tensor([0.0, 1.0, 0.5, 0.5, 0.5, 0.5]))
    torch.testing.assert_close(z[0], x0[0])  # t = 0 is data, t = 1 is noise
    torch.testing.assert_close(z[1], noise[1])


def _param_grads(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]


@pytest.mark.parametrize("tangent", ["model", "conditional"])
def test_meanflow_target_is_stop_gradient(tangent: str) -> None:
    """The gradient equals that of ‖u_θ − c‖² with the target c computed beforehand as a constant (the JVP taken
    along the network's own u(z, t, t) or along ε − x₀); a loss without the stop-gradient (the JVP term
    differentiated too) has another gradient, so this comparison can fail."""
    net = _denoiser(two_times=True)
    g = torch.Generator().manual_seed(1)
    x0, noise, cond = torch.randn(B, H, A, generator=g), torch.randn(B, H, A, generator=g), torch.randn(B, T_O * OBS)
    t = torch.rand(B, generator=g) * 0.5 + 0.5
    r = t * torch.rand(B, generator=g)

    net.zero_grad()
    loss, _ = meanflow_loss(net, x0, cond, noise, t, r, adaptive_power=1.0, tangent=tangent)
    loss.backward()  # type: ignore[no-untyped-call]
    got = _param_grads(net)

    z, v = interpolate(x0, noise, t), noise - x0
    with torch.no_grad():
        direction = net(z, t, cond, t) if tangent == "model" else v

    def u_fn(z_: torch.Tensor, r_: torch.Tensor, t_: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = net(z_, t_, cond, r_)
        return out

    with torch.no_grad():
        _, dudt = torch.func.jvp(u_fn, (z, r, t), (direction, torch.zeros_like(r), torch.ones_like(t)))  # type: ignore[misc]
    target = v - (t - r).view(-1, 1, 1) * dudt
    net.zero_grad()
    sq = (net(z, t, cond, r) - target).pow(2).flatten(1).sum(1)
    ((sq / (sq.detach() + 1e-3)).mean()).backward()
    for a, b in zip(got, _param_grads(net), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)

    net.zero_grad()  # the same loss with the target left differentiable: the gradient changes
    u, dudt_live = torch.func.jvp(  # type: ignore[misc]
        u_fn, (z, r, t), (direction, torch.zeros_like(r), torch.ones_like(t))
    )
    sq_live = (u - (v - (t - r).view(-1, 1, 1) * dudt_live)).pow(2).flatten(1).sum(1)
    ((sq_live / (sq_live.detach() + 1e-3)).mean()).backward()
    diff = max(float((a - b).abs().max()) for a, b in zip(got, _param_grads(net), strict=True))
    assert diff > 1e-4, diff


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_ema_copy_gets_no_gradients_and_follows_the_live_weights(name: str) -> None:
    torch.manual_seed(0)
    algo = make_algorithm(name, SPEC, CONFIGS[name](**SMALL))
    ema_before = [p.clone() for p in algo.ema.module.parameters()]  # type: ignore[attr-defined]
    for i in range(3):
        algo.update(iter([_batch(i)]))
    ema = algo.ema.module  # type: ignore[attr-defined]
    assert all(p.grad is None and not p.requires_grad for p in ema.parameters())
    live = list(algo.denoiser.parameters())  # type: ignore[attr-defined]
    assert all(p.grad is not None for p in live)  # the live weights did get gradients
    moved = [not torch.equal(a, b) for a, b in zip(ema_before, ema.parameters(), strict=True)]
    assert any(moved)
    policy = algo.policy()
    assert (
        isinstance(policy, ChunkSamplerPolicy) and policy.denoiser is ema
    )  # the deployable policy runs the EMA weights


def test_ema_update_is_the_documented_average() -> None:
    src = torch.nn.Linear(2, 2)
    ema = EMA(src, decay=0.9)
    copy = ema.module
    assert isinstance(copy, torch.nn.Linear)
    old = copy.weight.clone()
    with torch.no_grad():
        src.weight.add_(1.0)
    d = ema.current_decay()
    assert d == pytest.approx(0.1)  # warm-up: min(0.9, 1/10)
    ema.update()
    torch.testing.assert_close(copy.weight, d * old + (1 - d) * src.weight)


@pytest.mark.parametrize("kind", SAMPLER_KINDS)
def test_samplers_are_deterministic_given_the_noise(kind: str) -> None:
    net = _denoiser(two_times=kind == "meanflow")
    alphas = alphas_cumprod(squared_cosine_betas(100)) if kind == "ddim" else None
    sampler = ChunkSampler(kind, 2 if kind == "meanflow" else 4, alphas)
    cond, noise = torch.randn(B, T_O * OBS), torch.randn(B, H, A)
    with torch.no_grad():
        a, b = sampler(net, cond, noise), sampler(net, cond, noise.clone())
        c = sampler(net, cond, torch.randn(B, H, A))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert a.shape == (B, H, A)


@pytest.mark.parametrize("method", ["euler", "midpoint"])
def test_flow_sample_prediction_integrates_the_same_path_as_velocity_prediction(method: str) -> None:
    """A velocity field v(z, t) and the x₀-predictor x̂(z, t) = z − t·v(z, t) describe one flow: sampling either
    gives the same chunk (a sampler that mixed up the conversion or its sign would not)."""
    torch.manual_seed(0)
    w = torch.randn(H * A, H * A) * 0.05

    def velocity(z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, r: Any = None) -> torch.Tensor:
        return 0.3 * torch.tanh((z.flatten(1) @ w).view_as(z) + t.view(-1, 1, 1) + cond[:, :1, None])

    def sample(z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, r: Any = None) -> torch.Tensor:
        return z - t.view(-1, 1, 1) * velocity(z, t, cond)

    cond, noise = torch.randn(B, T_O * OBS), 0.3 * torch.randn(B, H, A)  # x̂ stays inside [-1, 1]: no clipping
    kind = f"flow_{method}"
    by_v = ChunkSampler(kind, 5, prediction="velocity")(velocity, cond, noise)  # type: ignore[arg-type]
    by_x = ChunkSampler(kind, 5, prediction="sample")(sample, cond, noise)  # type: ignore[arg-type]
    torch.testing.assert_close(by_x, by_v, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(by_v, noise)


def test_flow_sample_prediction_loss_targets_the_clean_chunk() -> None:
    """With `prediction="sample"` the loss is ‖x̂ − x₀‖²: a denoiser that returns x₀ exactly scores 0, one that
    returns the velocity does not."""
    g = torch.Generator().manual_seed(2)
    x0, noise, t = torch.rand(B, H, A, generator=g) * 2 - 1, torch.randn(B, H, A, generator=g), torch.rand(B)
    cond = torch.randn(B, T_O * OBS)

    def oracle(z: torch.Tensor, t_: torch.Tensor, cond_: torch.Tensor, r: Any = None) -> torch.Tensor:
        return x0

    assert float(flow_matching_loss(oracle, x0, cond, noise, t, prediction="sample")) == 0.0  # type: ignore[arg-type]
    assert float(flow_matching_loss(oracle, x0, cond, noise, t, prediction="velocity")) > 0.1  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prediction"):
        flow_matching_loss(oracle, x0, cond, noise, t, prediction="epsilon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="predicts one of"):
        ChunkSampler("meanflow", 1, prediction="epsilon")


def _f_and_u() -> tuple[Any, Any]:
    """A chunk predictor F(z, t, cond, r) and the average velocity it stands for, u = (z − F)/t."""
    torch.manual_seed(0)
    w = torch.randn(H * A, H * A) * 0.05

    def f_net(z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        lin = (z.flatten(1) @ w).view_as(z)
        return 0.5 * torch.tanh(lin + t.view(-1, 1, 1) - 0.5 * r.view(-1, 1, 1) + cond[:, :1, None])

    def u_net(z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return (z - f_net(z, t, cond, r)) / t.view(-1, 1, 1)

    return f_net, u_net


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_meanflow_sample_prediction_samples_the_same_chunks_as_its_velocity(steps: int) -> None:
    """MeanFlow with the x₀-style output F and with the velocity u = (z − F)/t is one model: the same chunks for
    any K (F stays inside [-1, 1]: no clipping); at K = 1 the chunk is F(ε, 0, 1) itself."""
    f_net, u_net = _f_and_u()
    cond, noise = torch.randn(B, T_O * OBS), torch.randn(B, H, A)
    by_u = ChunkSampler("meanflow", steps, prediction="velocity")(u_net, cond, noise)  # type: ignore[arg-type]
    by_f = ChunkSampler("meanflow", steps, prediction="sample")(f_net, cond, noise)  # type: ignore[arg-type]
    torch.testing.assert_close(by_f, by_u, rtol=1e-5, atol=1e-5)
    if steps == 1:
        torch.testing.assert_close(by_f, f_net(noise, torch.ones(B), cond, torch.zeros(B)))


def test_meanflow_sample_prediction_loss_is_the_velocity_loss_in_data_units() -> None:
    """The loss of the F-network with `prediction="sample"` is t² times the MeanFlow loss of the velocity network
    it stands for (the same identity, measured in data units): at one t for the whole batch, exactly t²·loss."""
    f_net, u_net = _f_and_u()
    g = torch.Generator().manual_seed(3)
    x0, noise, cond = torch.randn(B, H, A, generator=g), torch.randn(B, H, A, generator=g), torch.randn(B, T_O * OBS)
    t, r = torch.full((B,), 0.6), torch.rand(B, generator=g) * 0.6
    for tangent in ("model", "conditional"):
        by_u, _ = meanflow_loss(u_net, x0, cond, noise, t, r, 0.0, tangent=tangent)  # type: ignore[arg-type]
        by_f, mse = meanflow_loss(f_net, x0, cond, noise, t, r, 0.0, tangent=tangent, prediction="sample")  # type: ignore[arg-type]
        torch.testing.assert_close(by_f, 0.36 * by_u, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(mse, by_f / (H * A), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="prediction"):
        meanflow_loss(f_net, x0, cond, noise, t, r, prediction="epsilon")  # type: ignore[arg-type]


def _policy(kind: str, denoiser: str = "mlp", **extra: Any) -> ChunkSamplerPolicy:
    name = {"ddim": "diffusion", "flow_euler": "flow", "flow_midpoint": "flow", "meanflow": "meanflow"}[kind]
    extra |= {"sampler": "midpoint"} if kind == "flow_midpoint" else {}
    torch.manual_seed(0)
    algo = make_algorithm(name, SPEC, CONFIGS[name](**SMALL, **extra, denoiser=denoiser))
    algo.observe(np.random.default_rng(0).normal(size=(50, OBS)).astype(np.float32))
    for i in range(2):
        algo.update(iter([_batch(i)]))
    policy = algo.policy()
    assert isinstance(policy, ChunkSamplerPolicy)
    return policy


@pytest.mark.parametrize("denoiser", ["mlp", "unet"])
@pytest.mark.parametrize("kind", SAMPLER_KINDS)
def test_chunk_policy_returns_physical_chunks_within_bounds_and_traces(kind: str, denoiser: str) -> None:
    policy = _policy(kind, denoiser).eval()
    assert isinstance(policy, DeployablePolicy)
    assert (policy.obs_history, policy.chunk_size, policy.noise_shape) == (T_O, H, (H, A))
    assert (policy.spec.chunk_size, policy.spec.execution_horizon, policy.spec.obs_history) == (H, 2, T_O)
    assert policy.sampler_kind == kind and policy.sampler_steps >= 1
    obs, noise = torch.randn(B, T_O * OBS), 50.0 * torch.randn(B, H, A)  # huge noise: bounds must still hold
    with torch.no_grad():
        out = policy(obs, noise)
        norm = policy.sample_normalized(obs, noise)
    assert out.shape == (B, H, A)
    low, high = np.array(SPEC.action.low), np.array(SPEC.action.high)
    assert np.all(out.numpy() >= low - 1e-5) and np.all(out.numpy() <= high + 1e-5)
    np.testing.assert_allclose(out.numpy(), normalized_to_physical(norm.numpy(), low, high), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="noise as an input"):
        policy(obs)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(policy, (obs, noise), check_trace=False)  # type: ignore[no-untyped-call]
    tracer_warning: type[Warning] = torch.jit.TracerWarning  # type: ignore[attr-defined]
    ours = [w for w in caught if issubclass(w.category, tracer_warning) and "robot_rl" in w.filename]
    assert not ours, [f"{w.filename}:{w.lineno} {w.message}" for w in ours]  # no data-dependent branch of ours
    obs2, noise2 = torch.randn(3, T_O * OBS), torch.randn(3, H, A)  # another batch size: B stays symbolic
    with torch.no_grad():
        torch.testing.assert_close(traced(obs2, noise2), policy(obs2, noise2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kind", "prediction"), [*((k, None) for k in SAMPLER_KINDS), ("meanflow", "sample"), ("flow_euler", "sample")]
)
def test_chunk_policy_exports_to_onnx_with_the_sampler_unrolled(kind: str, prediction: str | None) -> None:
    """torch.onnx.export (TorchScript tracer, as the exporter uses it) and onnxruntime agree with torch."""
    ort = pytest.importorskip("onnxruntime")
    policy = _policy(kind, **({"prediction": prediction} if prediction else {})).eval()
    assert prediction is None or policy.sampler.prediction == prediction
    obs, noise = torch.randn(B, T_O * OBS), torch.randn(B, H, A)
    buf = io.BytesIO()
    torch.onnx.export(
        policy,
        (obs, noise),
        buf,  # type: ignore[arg-type]
        dynamo=False,
        input_names=["obs", "noise"],
        output_names=["action"],
        dynamic_axes={"obs": {0: "b"}, "noise": {0: "b"}, "action": {0: "b"}},
        opset_version=17,
    )
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    obs2, noise2 = torch.randn(3, T_O * OBS), torch.randn(3, H, A)
    got = session.run(None, {"obs": obs2.numpy(), "noise": noise2.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, policy(obs2, noise2).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["zscore", "minmax"])
def test_a_near_constant_observation_dimension_is_not_blown_up(kind: str) -> None:
    """A dimension that hardly varies in the demonstrations (a resting object's quaternion w: 0.999998…1.0) must
    not turn a small run-time difference into hundreds of standard deviations; one that varies keeps its scale."""
    from robot_rl.nets.generative.normalizers import make_obs_normalizer

    rng = np.random.default_rng(0)
    data = np.stack([1.0 - 2e-6 * rng.random(1000), rng.normal(0.0, 0.3, 1000)], axis=1).astype(np.float32)
    norm = make_obs_normalizer(kind, 2, 1e-2)
    norm.update(data)
    tilted = torch.tensor([[0.999, 0.3]])  # the object tipped a little; the other dimension one std out
    out = norm(tilted)[0]
    assert abs(float(out[0])) <= 0.2  # ≤ 0.001 / 0.01 away from its centre, not 0.001 / 1e-6
    assert 0.2 < abs(float(out[1])) < 2.0
    unfloored = make_obs_normalizer(kind, 2, 0.0)
    unfloored.update(data)
    if kind == "zscore":
        assert abs(float(unfloored(tilted)[0, 0])) > 5.0  # what the floor is for: 10σ from a 1 mm tilt
