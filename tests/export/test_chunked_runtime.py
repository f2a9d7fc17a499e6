"""OnnxPolicy on chunked sampler bundles: seeded noise, plan/observe/act (receding horizon), tamper refusal."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch

from robot_rl.core.types import Policy
from robot_rl.export.errors import BundleError
from robot_rl.export.manifest import MANIFEST_FILE, ONNX_FILE, sha256_file
from robot_rl.export.onnx_export import export_policy
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.nets.policy import TanhPolicy
from tests.export.chunked_sampler import EulerChunkSampler, chunk_spec

H, A, T_O, OBS, H_A = 8, 2, 2, 4, 3


@pytest.fixture(scope="module")
def sampler() -> EulerChunkSampler:
    return EulerChunkSampler(chunk_spec(chunk_size=H, execution_horizon=H_A, obs_history=T_O), steps=4).eval()


@pytest.fixture(scope="module")
def chunk_bundle(tmp_path_factory: pytest.TempPathFactory, sampler: EulerChunkSampler) -> Path:
    """One sampler bundle shared read-only (parity per K with 10^4 observations is in test_chunked_export.py)."""
    out = tmp_path_factory.mktemp("chunked") / "policy"
    export_policy(sampler, out, {"algo": "flow"}, n_parity=2000)
    return out


@pytest.fixture
def copy_of(chunk_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(chunk_bundle, dst)
    return dst


def _observations(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, 1.0, size=OBS).astype(np.float32) for _ in range(n)]


def _torch_plan(sampler: EulerChunkSampler, history: np.ndarray, noise: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out: np.ndarray = sampler(torch.from_numpy(history[None]), torch.from_numpy(noise[None]))[0].numpy()
    return out


# --- plan and noise -------------------------------------------------------------------------------


def test_protocols_and_properties(chunk_bundle: Path) -> None:
    policy = OnnxPolicy.load(chunk_bundle)
    assert isinstance(policy, Policy)  # runs in `evaluate` / the bundle-rollout source unchanged
    assert (policy.chunk_size, policy.execution_horizon, policy.obs_history) == (H, H_A, T_O)
    assert policy.noise_shape == (H, A)
    assert policy.sampler is not None and (policy.sampler.kind, policy.sampler.steps) == ("flow", 4)
    assert "sampler=flow/4" in repr(policy)


def test_plan_with_explicit_noise_matches_torch(chunk_bundle: Path, sampler: EulerChunkSampler) -> None:
    policy = OnnxPolicy.load(chunk_bundle)
    rng = np.random.default_rng(1)
    for _ in range(20):
        history = rng.normal(0.0, 2.0, size=T_O * OBS).astype(np.float32)
        noise = rng.standard_normal((H, A), dtype=np.float32)
        chunk = policy.plan(history, noise)
        assert chunk.shape == (H, A) and chunk.dtype == np.float32
        np.testing.assert_allclose(chunk, _torch_plan(sampler, history, noise), rtol=0, atol=1e-5)
        np.testing.assert_array_equal(policy.plan(history[None], noise[None]), chunk)  # batch-1 forms too


def test_same_seed_same_plans_other_seed_other_plans(chunk_bundle: Path) -> None:
    history = np.linspace(-1.0, 1.0, T_O * OBS, dtype=np.float32)
    a, b = OnnxPolicy.load(chunk_bundle, seed=11), OnnxPolicy.load(chunk_bundle, seed=11)
    plans_a = [a.plan(history) for _ in range(5)]
    plans_b = [b.plan(history) for _ in range(5)]
    for x, y in zip(plans_a, plans_b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(plans_a[0], plans_a[1])  # each plan draws fresh noise
    other = OnnxPolicy.load(chunk_bundle, seed=12).plan(history)
    assert float(np.abs(other - plans_a[0]).max()) > 1e-4
    a.reseed(11)
    np.testing.assert_array_equal(a.plan(history), plans_a[0])


def test_seeded_noise_is_standard_normal_draws(chunk_bundle: Path, sampler: EulerChunkSampler) -> None:
    """`plan(noise=None)` uses `default_rng(seed).standard_normal((1, H, A), float32)`: reproducible elsewhere."""
    history = np.linspace(-1.0, 1.0, T_O * OBS, dtype=np.float32)
    noise = np.random.default_rng(3).standard_normal((1, H, A), dtype=np.float32)[0]
    np.testing.assert_allclose(
        OnnxPolicy.load(chunk_bundle, seed=3).plan(history), _torch_plan(sampler, history, noise), rtol=0, atol=1e-5
    )


def test_explicit_noise_is_deterministic_and_matters(chunk_bundle: Path) -> None:
    policy = OnnxPolicy.load(chunk_bundle)
    history = np.linspace(-1.0, 1.0, T_O * OBS, dtype=np.float32)
    noise = np.random.default_rng(0).standard_normal((H, A), dtype=np.float32)
    np.testing.assert_array_equal(policy.plan(history, noise), policy.plan(history, noise.copy()))
    assert float(np.abs(policy.plan(history, noise) - policy.plan(history, -noise)).max()) > 1e-3


def test_plan_batch(chunk_bundle: Path, sampler: EulerChunkSampler) -> None:
    policy = OnnxPolicy.load(chunk_bundle)
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(16, T_O * OBS)).astype(np.float32)
    noise = rng.standard_normal((16, H, A), dtype=np.float32)
    with torch.inference_mode():
        expected = sampler(torch.from_numpy(obs), torch.from_numpy(noise)).numpy()
    np.testing.assert_allclose(policy.plan_batch(obs, noise), expected, rtol=0, atol=1e-5)
    assert policy.plan_batch(obs).shape == (16, H, A)  # seeded noise
    with pytest.raises(ValueError, match="noise batch has 3 rows"):
        policy.plan_batch(obs, noise[:3])
    with pytest.raises(ValueError, match="use plan_batch"):
        policy.act_batch(obs)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.plan(np.zeros(OBS)), "observation history has shape"),
        (lambda p: p.plan(np.full(T_O * OBS, np.nan)), "not finite"),
        (lambda p: p.plan(np.zeros(T_O * OBS), np.zeros((H, A + 1))), "noise has shape"),
        (lambda p: p.plan(np.zeros(T_O * OBS), np.full((H, A), np.inf)), "noise is not finite"),
        (lambda p: p.plan({"pos": np.zeros(2), "goal": np.zeros(2)}), "obs_history 1"),
        (lambda p: p.act(np.zeros(T_O * OBS)), "observation has shape"),
        (lambda p: p.act(np.array([0.0, np.nan, 0.0, 0.0])), "not finite"),
    ],
)
def test_bad_inputs_refused(chunk_bundle: Path, call: Callable[[OnnxPolicy], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(OnnxPolicy.load(chunk_bundle))


# --- history and receding horizon ------------------------------------------------------------------


def test_observe_repeats_the_first_observation_at_episode_start(chunk_bundle: Path) -> None:
    policy = OnnxPolicy.load(chunk_bundle)
    o0, o1, o2 = _observations(3)
    np.testing.assert_array_equal(policy.observe(o0), np.concatenate([o0, o0]))
    np.testing.assert_array_equal(policy.observe(o1), np.concatenate([o0, o1]))
    np.testing.assert_array_equal(policy.observe(o2), np.concatenate([o1, o2]))
    policy.reset()
    np.testing.assert_array_equal(policy.observe(o2), np.concatenate([o2, o2]))
    with pytest.raises(ValueError, match="not finite"):
        policy.observe(np.full(OBS, np.nan))
    np.testing.assert_array_equal(policy.observe(o0), np.concatenate([o2, o0]))  # a refused one is not kept
    np.testing.assert_array_equal(
        policy.observe({"pos": o1[:2], "goal": o1[2:]}), np.concatenate([o0, o1])
    )  # named entries in spec order


def _reference_actions(bundle: Path, observations: list[np.ndarray], seed: int, horizon: int) -> list[np.ndarray]:
    """What a receding-horizon runner must do, written out with `plan`: history padded, replan every H_a steps."""
    ref = OnnxPolicy.load(bundle, seed=seed)
    actions: list[np.ndarray] = []
    chunk = np.zeros((H, A), np.float32)
    for t, _ in enumerate(observations):
        window = [observations[max(0, t - T_O + 1 + i)] for i in range(T_O)]
        if t % horizon == 0:
            chunk = ref.plan(np.concatenate(window))
        actions.append(chunk[t % horizon])
    return actions


def test_act_executes_h_a_actions_then_replans(chunk_bundle: Path) -> None:
    observations = _observations(11, seed=4)
    policy = OnnxPolicy.load(chunk_bundle, seed=7)
    got, replans = [], []
    for obs in observations:
        got.append(policy.act(obs))
        replans.append(policy.replanned)
    assert replans == [t % H_A == 0 for t in range(len(observations))]
    expected = _reference_actions(chunk_bundle, observations, seed=7, horizon=H_A)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == (A,) and g.dtype == np.float32
        np.testing.assert_array_equal(g, e)


def test_reset_starts_a_new_chunk_and_history(chunk_bundle: Path) -> None:
    observations = _observations(5, seed=5)
    policy = OnnxPolicy.load(chunk_bundle, seed=1)
    policy.act(observations[0])
    policy.act(observations[1])  # mid-chunk
    policy.reset(observations[2])  # usable as evaluate's on_reset(first_obs)
    policy.act(observations[2])
    assert policy.replanned
    # The new episode's first plan sees [o2, o2] with the generator's next draw (reset does not re-seed).
    ref = OnnxPolicy.load(chunk_bundle, seed=1)
    ref.plan(np.zeros(T_O * OBS))  # the draw the first episode used
    expected = ref.plan(np.concatenate([observations[2], observations[2]]))[0]
    policy.reset()
    policy.reseed(1)
    policy.act(observations[0])
    policy.reset()
    np.testing.assert_array_equal(policy.act(observations[2]), expected)


def test_execution_horizon_override(chunk_bundle: Path) -> None:
    policy = OnnxPolicy.load(chunk_bundle, execution_horizon=1)
    assert policy.execution_horizon == 1
    for obs in _observations(4):
        policy.act(obs)
        assert policy.replanned
    whole = OnnxPolicy.load(chunk_bundle, execution_horizon=H)
    assert [whole.act(obs) is not None and whole.replanned for obs in _observations(H + 1)] == [True] + [False] * (
        H - 1
    ) + [True]
    with pytest.raises(ValueError, match="execution_horizon must be in"):
        OnnxPolicy.load(chunk_bundle, execution_horizon=H + 1)


def test_control_step_chunk_protocol(chunk_bundle: Path) -> None:
    """What ros_nodes' ChunkPolicy needs: `chunk_size` and `plan(...) -> [chunk_size, A]` physical."""
    policy = OnnxPolicy.load(chunk_bundle)
    chunk = policy.plan(policy.observe(_observations(1)[0]))
    assert chunk.shape == (policy.chunk_size, A)
    low, high = np.array(policy.spec.action.low), np.array(policy.spec.action.high)
    assert ((chunk >= low) & (chunk <= high)).all()


def test_chunked_bundle_runs_in_sim_evaluation(tmp_path: Path) -> None:
    """A chunked sampler bundle through `evaluate` (the `robot-rl eval` loop): runs, and is reproducible."""
    from robot_rl.train.evaluate import evaluate

    spec = chunk_spec(chunk_size=4, execution_horizon=2, obs_history=2, env_id="Pendulum-v1", obs_dim=3)
    spec = type(spec)(**{**spec.__dict__, "action": type(spec.action)(low=(-2.0,), high=(2.0,))})
    export_policy(EulerChunkSampler(spec, steps=2).eval(), tmp_path / "b", {"algo": "flow"}, n_parity=300)
    results = []
    for _ in range(2):
        policy = OnnxPolicy.load(tmp_path / "b", seed=0)
        res = evaluate(policy.act, "Pendulum-v1", 2, seed=0, on_reset=policy.reset, spec=policy.spec)
        results.append(res.returns)
    assert len(results[0]) == 2 and np.isfinite(results[0]).all()
    assert results[0] == results[1]
    # `robot-rl eval` resets the bundle at every episode start (history and queue), as the loop above does.
    from robot_rl.cli import eval_bundle

    res, env_id = eval_bundle(tmp_path / "b", "", 2, 0)
    assert env_id == "Pendulum-v1" and res.returns == results[0]


# --- a tampered or mismatched chunked bundle is refused ---------------------------------------------


def _edit_manifest(bundle_dir: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = bundle_dir / MANIFEST_FILE
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _refused(bundle_dir: Path, pattern: str, **kwargs: Any) -> None:
    with pytest.raises(BundleError, match=pattern) as err:
        OnnxPolicy.load(bundle_dir, **kwargs)
    assert "\n" not in str(err.value), f"the reason must be one line: {err.value}"


def test_changed_weights_with_rehashed_manifest_refused_when_pinned(copy_of: Path, chunk_bundle: Path) -> None:
    pinned = sha256_file(chunk_bundle / ONNX_FILE)
    model = onnx.load(str(copy_of / ONNX_FILE))
    weight = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    values = onnx.numpy_helper.to_array(weight).copy()
    values.flat[0] += 0.5
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(model, str(copy_of / ONNX_FILE))
    _edit_manifest(copy_of, lambda m: m.update(onnx_sha256=sha256_file(copy_of / ONNX_FILE)))
    tampered = OnnxPolicy.load(copy_of)  # consistent with its (re-hashed) manifest: only a pin can tell
    history, noise = np.zeros(T_O * OBS, np.float32), np.ones((H, A), np.float32)
    assert not np.array_equal(tampered.plan(history, noise), OnnxPolicy.load(chunk_bundle).plan(history, noise))
    _refused(copy_of, "sha256 mismatch: expected .* a different model than the one pinned", expected_sha256=pinned)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = m
        for key in parents:
            node = node[key]
        node[leaf] = value

    return edit


@pytest.mark.parametrize(
    ("edits", "pattern"),
    [
        ([_set("noise_shape", ["batch", 4, 2])], r"input 'noise' has shape .*manifest noise_shape"),
        ([_set("sampler.steps", 10)], r"manifest sampler\.steps 10 does not match the model's 4"),
        ([_set("sampler.kind", "ddim")], r"manifest sampler\.kind 'ddim' does not match the model's 'flow'"),
        ([_set("noise_name", "eps")], r"named 'noise', expected 'eps'"),
        ([_set("sampler", None)], r"sampler\.kind None does not match the model's 'flow'"),
        (
            [_set("noise_name", None), _set("noise_shape", None)],
            r"exactly one input and one output, has inputs \['obs', 'noise'\]",
        ),
        ([_set("policy_spec.chunk_size", 4)], r"output_shape .*chunk_size 4"),
        (
            [
                _set("policy_spec.chunk_size", 4),
                _set("policy_spec.execution_horizon", 2),
                _set("output_shape", ["batch", 4, 2]),
            ],
            r"output 'action' has shape .*policy_spec\.chunk_size 4",
        ),
        (
            [_set("policy_spec.execution_horizon", 5)],
            r"manifest policy_spec\.execution_horizon 5 does not match the model's 3",
        ),
        (
            [_set("policy_spec.obs_history", 1), _set("input_shape", ["batch", 4])],
            r"input 'obs' has shape .*policy_spec\.obs_history 1",
        ),
        ([_set("output_shape", ["batch", 8, 3])], r"output_shape .*action dim 2"),
    ],
)
def test_edited_chunk_fields_refused_naming_the_field(
    copy_of: Path, edits: list[Callable[[dict[str, Any]], None]], pattern: str
) -> None:
    for edit in edits:
        _edit_manifest(copy_of, edit)
    _refused(copy_of, pattern)


def test_sampler_fields_stripped_from_the_manifest_refused(copy_of: Path) -> None:
    """A manifest without any sampler field, over a sampler graph (noise input removed from the check too)."""

    def strip(m: dict[str, Any]) -> None:
        for key in ("noise_name", "noise_shape", "sampler"):
            del m[key]

    _edit_manifest(copy_of, strip)
    _refused(copy_of, r"has inputs \['obs', 'noise'\]")


# --- chunk-size-1 bundles behave as before ---------------------------------------------------------


def test_plain_bundle_unchanged(bundle: Path, policy: TanhPolicy) -> None:
    data = json.loads((bundle / MANIFEST_FILE).read_text())
    assert not {"noise_name", "noise_shape", "sampler"} & set(data)  # the format-2 layout older readers know
    loaded = OnnxPolicy.load(bundle)
    assert (loaded.chunk_size, loaded.execution_horizon, loaded.obs_history) == (1, 1, 1)
    assert loaded.noise_shape is None and loaded.sampler is None
    obs = np.linspace(-1.0, 1.0, 8, dtype=np.float32)
    plan = loaded.plan(obs)
    assert plan.shape == (1, 3)
    np.testing.assert_array_equal(plan[0], loaded.act(obs))
    assert loaded.replanned
    assert loaded.plan_batch(np.stack([obs, -obs])).shape == (2, 1, 3)
    np.testing.assert_array_equal(loaded.observe(obs), obs)
    with pytest.raises(ValueError, match="takes no noise"):
        loaded.plan(obs, np.zeros(3))
    loaded.reset()
    np.testing.assert_array_equal(loaded.act(obs), plan[0])
