"""Domain randomization: defaults are a no-op, sampling is reproducible and in range, nuisances behave."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.randomization import (
    ActionDelay,
    DomainRandomization,
    EpisodeRandomization,
    StepNuisance,
    sample_episode,
)

SIZES = {"n_bodies": 4, "n_geoms": 6, "n_joints": 3, "n_actuated": 2, "obs_dim": 5}

FULL = DomainRandomization(
    mass_scale=(0.8, 1.2),
    friction_scale=(0.5, 1.5),
    joint_damping_scale=(0.0, 2.0),
    actuator_gain_scale=(0.9, 1.1),
    action_latency_steps=(1, 3),
    obs_noise_std=0.01,
    obs_bias_std=0.02,
    control_jitter_frac=0.2,
    impulse_prob_per_step=0.3,
    impulse_force_n=(5.0, 20.0),
    impulse_duration_steps=4,
)

SCALE_FIELDS = ("mass_scale", "friction_scale", "joint_damping_scale", "actuator_gain_scale")


def _assert_same(a: EpisodeRandomization, b: EpisodeRandomization) -> None:
    for name in (*SCALE_FIELDS, "obs_bias"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.action_latency_steps == b.action_latency_steps


def test_defaults_are_an_exact_noop() -> None:
    dr = DomainRandomization()
    assert not dr.enabled
    assert not DomainRandomization(impulse_duration_steps=5).enabled  # a lone duration changes nothing
    assert not DomainRandomization(impulse_prob_per_step=1.0).enabled  # pushes of 0 N change nothing
    nominal = EpisodeRandomization.nominal(**SIZES)
    ep = sample_episode(dr, np.random.default_rng(0), **SIZES)
    _assert_same(ep, nominal)
    for name in SCALE_FIELDS:
        assert np.all(getattr(ep, name) == 1.0)
    assert ep.action_latency_steps == 0
    assert np.all(ep.obs_bias == 0.0) and not np.any(np.signbit(ep.obs_bias))  # no -0.0 either

    delay = ActionDelay()
    delay.reset(0, np.zeros(2))
    a = np.array([0.3, -0.7])
    np.testing.assert_array_equal(delay.push(a), a)

    nuisance = StepNuisance(dr, np.random.default_rng(0))
    assert all(nuisance.substeps(n) == n for n in (1, 2, 5, 10, 100))
    noise = nuisance.obs_noise((3, 4))
    assert noise.shape == (3, 4) and np.all(noise == 0.0)
    assert all(nuisance.impulse() is None for _ in range(100))


@pytest.mark.parametrize(
    "change",
    [
        {"mass_scale": (0.9, 1.0)},
        {"friction_scale": (1.0, 1.1)},
        {"joint_damping_scale": (0.5, 0.5)},
        {"actuator_gain_scale": (0.9, 1.1)},
        {"action_latency_steps": (0, 1)},
        {"obs_noise_std": 0.1},
        {"obs_bias_std": 0.1},
        {"control_jitter_frac": 0.1},
        {"impulse_prob_per_step": 0.1, "impulse_force_n": (0.0, 1.0)},
    ],
)
def test_any_feature_enables(change: dict[str, Any]) -> None:
    assert DomainRandomization(**change).enabled


def test_same_seed_same_samples_different_seed_different() -> None:
    a = sample_episode(FULL, np.random.default_rng(7), **SIZES)
    b = sample_episode(FULL, np.random.default_rng(7), **SIZES)
    c = sample_episode(FULL, np.random.default_rng(8), **SIZES)
    _assert_same(a, b)
    assert not np.array_equal(a.mass_scale, c.mass_scale)
    assert not np.array_equal(a.obs_bias, c.obs_bias)

    n1, n2, n3 = (StepNuisance(FULL, np.random.default_rng(s)) for s in (7, 7, 8))
    seq1 = [(n1.substeps(10), n1.obs_noise(5), n1.impulse()) for _ in range(50)]
    seq2 = [(n2.substeps(10), n2.obs_noise(5), n2.impulse()) for _ in range(50)]
    seq3 = [(n3.substeps(10), n3.obs_noise(5), n3.impulse()) for _ in range(50)]
    for (s1, o1, i1), (s2, o2, i2) in zip(seq1, seq2, strict=True):
        assert s1 == s2
        np.testing.assert_array_equal(o1, o2)
        assert (i1 is None) == (i2 is None)
        if i1 is not None and i2 is not None:
            np.testing.assert_array_equal(i1, i2)
    assert not all(np.array_equal(o1, o3) for (_, o1, _), (_, o3, _) in zip(seq1, seq3, strict=True))


def test_one_feature_does_not_shift_the_others() -> None:
    """Common random numbers: turning mass randomization on leaves friction, latency and bias draws unchanged."""
    only_friction = DomainRandomization(friction_scale=(0.5, 1.5), action_latency_steps=(0, 4), obs_bias_std=0.1)
    plus_mass = DomainRandomization(
        mass_scale=(0.5, 2.0), friction_scale=(0.5, 1.5), action_latency_steps=(0, 4), obs_bias_std=0.1
    )
    a = sample_episode(only_friction, np.random.default_rng(3), **SIZES)
    b = sample_episode(plus_mass, np.random.default_rng(3), **SIZES)
    np.testing.assert_array_equal(a.friction_scale, b.friction_scale)
    np.testing.assert_array_equal(a.obs_bias, b.obs_bias)
    assert a.action_latency_steps == b.action_latency_steps
    assert not np.array_equal(a.mass_scale, b.mass_scale)

    # Per-step streams are independent too: noise does not depend on whether jitter or impulses draw.
    quiet = StepNuisance(DomainRandomization(obs_noise_std=0.1), np.random.default_rng(5))
    busy = StepNuisance(dataclasses.replace(FULL, obs_noise_std=0.1), np.random.default_rng(5))
    for _ in range(20):
        busy.substeps(10)
        busy.impulse()
        np.testing.assert_array_equal(quiet.obs_noise(4), busy.obs_noise(4))


def test_2000_samples_stay_in_range() -> None:
    rng = np.random.default_rng(0)
    latencies = set()
    for _ in range(2000):
        ep = sample_episode(FULL, rng, **SIZES)
        for name in SCALE_FIELDS:
            lo, hi = getattr(FULL, name)
            values = getattr(ep, name)
            assert values.dtype == np.float64 and np.all((values >= lo) & (values <= hi)), name
        assert ep.mass_scale.shape == (SIZES["n_bodies"],)
        assert ep.friction_scale.shape == (SIZES["n_geoms"],)
        assert ep.joint_damping_scale.shape == (SIZES["n_joints"],)
        assert ep.actuator_gain_scale.shape == (SIZES["n_actuated"],)
        assert ep.obs_bias.shape == (SIZES["obs_dim"],) and np.all(np.isfinite(ep.obs_bias))
        assert FULL.action_latency_steps[0] <= ep.action_latency_steps <= FULL.action_latency_steps[1]
        latencies.add(ep.action_latency_steps)
    assert latencies == {1, 2, 3}  # both ends of the inclusive range are reachable

    nuisance = StepNuisance(FULL, np.random.default_rng(1))
    lo_n, hi_n = FULL.impulse_force_n
    fired = 0
    for _ in range(2000):
        force = nuisance.impulse()
        if force is not None:
            fired += 1
            assert force.shape == (3,)
            assert lo_n - 1e-9 <= float(np.linalg.norm(force)) <= hi_n + 1e-9
    assert 0 < fired < 2000


@settings(max_examples=60, deadline=None)
@given(
    bounds=st.tuples(st.floats(0.01, 10.0), st.floats(0.0, 10.0)),
    latency=st.tuples(st.integers(0, 5), st.integers(0, 5)),
    seed=st.integers(0, 2**32 - 1),
)
def test_sampled_values_within_any_declared_range(
    bounds: tuple[float, float], latency: tuple[int, int], seed: int
) -> None:
    lo, hi = bounds[0], bounds[0] + bounds[1]
    lat = (min(latency), max(latency))
    dr = DomainRandomization(
        mass_scale=(lo, hi),
        friction_scale=(lo, hi),
        joint_damping_scale=(lo, hi),
        actuator_gain_scale=(lo, hi),
        action_latency_steps=lat,
    )
    rng = np.random.default_rng(seed)
    for _ in range(20):
        ep = sample_episode(dr, rng, **SIZES)
        for name in SCALE_FIELDS:
            values = getattr(ep, name)
            assert np.all((values >= lo) & (values <= hi))
        assert lat[0] <= ep.action_latency_steps <= lat[1]


@pytest.mark.parametrize("k", [0, 1, 2, 5])
def test_latency_delays_exactly_k_pushes(k: int) -> None:
    delay = ActionDelay()
    initial = np.array([-1.0, -1.0])
    delay.reset(k, initial)
    assert delay.latency_steps == k
    actions = [np.array([float(i), float(i) / 10]) for i in range(12)]
    applied = [delay.push(a) for a in actions]
    for i, out in enumerate(applied):
        expected = initial if i < k else actions[i - k]
        np.testing.assert_array_equal(out, expected)

    # A new episode forgets the old queue; mutating a returned action cannot corrupt the queue.
    delay.reset(1, np.zeros(2))
    out = delay.push(np.ones(2))
    out[:] = 99.0
    np.testing.assert_array_equal(delay.push(np.full(2, 2.0)), np.ones(2))


def test_action_delay_rejects_bad_input() -> None:
    delay = ActionDelay()
    with pytest.raises(RuntimeError, match="reset"):
        delay.push(np.zeros(2))
    with pytest.raises(ValueError, match="latency_steps"):
        delay.reset(-1, np.zeros(2))
    with pytest.raises(ValueError, match="initial_action"):
        delay.reset(1, np.array([0.0, np.nan]))
    delay.reset(1, np.zeros(2))
    with pytest.raises(ValueError, match="action"):
        delay.push(np.array([np.inf, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        delay.push(np.zeros(3))


@pytest.mark.parametrize("frac", [0.0, 0.05, 0.1, 0.3, 0.5, 0.9, 0.99])
def test_jitter_stays_in_bounds_and_at_least_one(frac: float) -> None:
    nuisance = StepNuisance(DomainRandomization(control_jitter_frac=frac), np.random.default_rng(11))
    for nominal in (1, 2, 3, 5, 10, 25):
        max_dev = math.floor(frac * nominal + 0.5)
        seen = {nuisance.substeps(nominal) for _ in range(300)}
        assert min(seen) >= 1
        assert all(abs(n - nominal) <= max_dev or n == 1 for n in seen), (nominal, seen)
        if max_dev >= 2:
            assert len(seen) > 1  # the jitter actually varies
    with pytest.raises(ValueError, match="nominal"):
        nuisance.substeps(0)


def test_obs_noise_has_the_declared_scale() -> None:
    noise = StepNuisance(DomainRandomization(obs_noise_std=0.5), np.random.default_rng(2)).obs_noise((4000,))
    assert noise.shape == (4000,) and np.all(np.isfinite(noise))
    assert abs(float(noise.std()) - 0.5) < 0.05 and abs(float(noise.mean())) < 0.05


def test_json_round_trip() -> None:
    for dr in (DomainRandomization(), FULL):
        data = json.loads(json.dumps(dr.to_json()))
        back = DomainRandomization.from_json(data)
        assert back == dr
        assert isinstance(back.mass_scale, tuple) and isinstance(back.action_latency_steps, tuple)
    assert FULL.to_json()["action_latency_steps"] == [1, 3]
    with pytest.raises(ValueError, match="unknown"):
        DomainRandomization.from_json({"mass_scal": [1.0, 1.0]})
    with pytest.raises(ValueError, match="mass_scale"):
        DomainRandomization.from_json({"mass_scale": [2.0, 1.0]})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mass_scale", (1.2, 0.8)),
        ("mass_scale", (0.0, 1.0)),
        ("mass_scale", (1.0,)),
        ("mass_scale", (float("nan"), 1.0)),
        ("friction_scale", (-0.1, 1.0)),
        ("friction_scale", (1.0, float("inf"))),
        ("joint_damping_scale", (2.0, 1.0)),
        ("actuator_gain_scale", (-1.0, 1.0)),
        ("action_latency_steps", (2, 1)),
        ("action_latency_steps", (-1, 0)),
        ("action_latency_steps", (0.5, 1)),
        ("action_latency_steps", (True, 2)),
        ("obs_noise_std", -0.1),
        ("obs_noise_std", float("nan")),
        ("obs_bias_std", float("inf")),
        ("control_jitter_frac", 1.0),
        ("control_jitter_frac", -0.1),
        ("impulse_prob_per_step", 1.5),
        ("impulse_prob_per_step", -0.1),
        ("impulse_force_n", (10.0, 5.0)),
        ("impulse_force_n", (-1.0, 5.0)),
        ("impulse_duration_steps", 0),
        ("impulse_duration_steps", 1.5),
    ],
)
def test_invalid_field_names_itself(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        DomainRandomization(**{field: value})


def test_episode_values_are_validated_and_read_only() -> None:
    ep = sample_episode(FULL, np.random.default_rng(0), **SIZES)
    with pytest.raises(ValueError, match="read-only"):
        ep.mass_scale[0] = 5.0
    with pytest.raises(ValueError, match="n_geoms"):
        sample_episode(FULL, np.random.default_rng(0), **{**SIZES, "n_geoms": -1})
    nominal = EpisodeRandomization.nominal(**SIZES)
    with pytest.raises(ValueError, match="obs_bias"):
        EpisodeRandomization(
            mass_scale=nominal.mass_scale,
            friction_scale=nominal.friction_scale,
            joint_damping_scale=nominal.joint_damping_scale,
            actuator_gain_scale=nominal.actuator_gain_scale,
            action_latency_steps=0,
            obs_bias=np.array([np.nan]),
        )
    with pytest.raises(ValueError, match="action_latency_steps"):
        EpisodeRandomization(
            mass_scale=nominal.mass_scale,
            friction_scale=nominal.friction_scale,
            joint_damping_scale=nominal.joint_damping_scale,
            actuator_gain_scale=nominal.actuator_gain_scale,
            action_latency_steps=-2,
            obs_bias=nominal.obs_bias,
        )
