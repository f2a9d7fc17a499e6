"""S1/S2 property tests of the whole chain over generated configs, state sequences, malformed inputs and dt.

S1: no exception escapes; every output is finite, shaped [n], inside every bound; rate and acceleration bounds
hold whenever the chain did not hold; NaN always holds. S2: filtering a filtered action changes nothing
(preview of the output returns it), preview equals filter, and a safe command passes bitwise unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from robot_rl.safety import SafetyChain, SafetyConfig
from robot_rl.safety.links import PlausibilityLink

WEIRD = [math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -0.0, 5e-324]
TOL = 1e-9


@st.composite
def configs(draw: st.DrawFn) -> SafetyConfig:
    n = draw(st.integers(1, 4))
    iface = draw(st.sampled_from(["position", "velocity", "effort"]))
    floats = st.floats
    lower = draw(st.lists(floats(-3.0, 0.5), min_size=n, max_size=n))
    width = draw(st.lists(floats(0.3, 4.0), min_size=n, max_size=n))
    return SafetyConfig.for_joints(
        [f"j{i}" for i in range(n)],
        iface,
        draw(st.sampled_from([0.002, 0.01, 0.04])),
        lower,
        [lo + w for lo, w in zip(lower, width, strict=True)],
        draw(st.lists(floats(0.1, 5.0), min_size=n, max_size=n)),
        acceleration=draw(st.lists(floats(0.5, 100.0), min_size=n, max_size=n)),
        effort=draw(st.lists(floats(1.0, 100.0), min_size=n, max_size=n)),
        position_margin_rad=draw(st.sampled_from([0.0, 0.01, 0.1])),
    )


def values(n: int) -> st.SearchStrategy[Any]:
    """A command or measurement: mostly plausible float vectors, plus every kind of malformed input."""
    good = hnp.arrays(np.float64, n, elements=st.floats(-5.0, 5.0))
    weird = hnp.arrays(np.float64, n, elements=st.one_of(st.sampled_from(WEIRD), st.floats(-5.0, 5.0)))
    malformed = st.one_of(
        st.none(),
        hnp.arrays(np.float64, st.integers(0, n + 2).filter(lambda k: k != n)),
        hnp.arrays(np.float64, (1, n), elements=st.floats(-1, 1)),
        hnp.arrays(np.float32, n, elements=st.floats(-1, 1, width=32)),
        hnp.arrays(np.int64, n, elements=st.integers(-2, 2)),
        hnp.arrays(np.bool_, n),
        hnp.arrays(np.complex128, n, elements=st.just(1 + 1j)),
        st.lists(st.floats(-2, 2), min_size=n, max_size=n),
        st.lists(st.floats(-2, 2), min_size=0, max_size=n + 2),
        st.just(np.array([object()] * n, dtype=object)),
        st.sampled_from(["abc", 1.0, {"a": 1}, [[1.0]] * n, [None] * n, [1e400] * n]),
    )
    # Duplicated branches weight the mix (one_of picks branches uniformly): most steps must get past the
    # input checks, or the rate and acceleration limits would rarely be exercised.
    return st.one_of(good, good, good, good, weird, malformed)


FRESH_AGE = st.one_of(st.just(0.0), st.floats(0.0, 0.004))
STAMP_AGE = st.one_of(
    FRESH_AGE,
    FRESH_AGE,
    FRESH_AGE,
    FRESH_AGE,
    st.sampled_from([None, math.nan, math.inf, -math.inf, 10.0, -10.0, 1e308]),
    st.floats(-1.0, 1.0),
)
NORMAL_DT = st.one_of(st.sampled_from([0.002, 0.01, 0.04]), st.floats(0.001, 0.05))
DT = st.one_of(
    NORMAL_DT,
    NORMAL_DT,
    NORMAL_DT,
    st.sampled_from([0.0, -0.01, math.nan, math.inf, -math.inf, 1e-12, 1e308, -1e308]),
    st.floats(-0.05, 0.2),
)


@dataclass
class Step:
    command: Any
    dt: float
    joint_pos: Any
    obs_age: float | None
    cmd_age: float | None


@st.composite
def scenarios(draw: st.DrawFn, hostile: bool) -> tuple[SafetyConfig, Any, list[Step]]:
    """hostile: every input may be malformed; otherwise clocks and stamps are sane and commands plausible
    (jumps far beyond the rate limits included), so the limit links act on most steps."""
    cfg = draw(configs())
    n = cfg.n_joints
    reset_pos = draw(values(n))
    if hostile:
        vals, dts, ages = values(n), DT, STAMP_AGE
    else:
        vals = hnp.arrays(np.float64, n, elements=st.floats(-5.0, 5.0))
        dts, ages = NORMAL_DT, FRESH_AGE
    steps = [
        Step(draw(vals), draw(dts), draw(vals), draw(ages), draw(ages))
        for _ in range(draw(st.integers(1, 12 if hostile else 25)))
    ]
    return cfg, reset_pos, steps


def _kwargs(now: float, step: Step) -> dict[str, Any]:
    def stamp(age: float | None) -> float | None:
        return None if age is None else now - age

    return {
        "now_s": now,
        "joint_pos_rad": step.joint_pos,
        "joint_vel_rad_s": None,
        "observation_stamp_s": stamp(step.obs_age),
        "command_stamp_s": stamp(step.cmd_age),
    }


def _measured(value: Any, n: int) -> np.ndarray | None:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu" or value.shape != (n,):
        if isinstance(value, list) and len(value) == n and all(isinstance(v, float) for v in value):
            value = np.asarray(value)
        else:
            return None
    q = value.astype(np.float64)
    return q if np.isfinite(q).all() else None


@settings(max_examples=300, deadline=None)
@given(scenarios(hostile=True))
def test_s1_s2_hostile_inputs(scenario: tuple[SafetyConfig, Any, list[Step]]) -> None:
    check_scenario(*scenario)


@settings(max_examples=300, deadline=None)
@given(scenarios(hostile=False))
def test_s1_s2_limits_under_sane_clocks(scenario: tuple[SafetyConfig, Any, list[Step]]) -> None:
    check_scenario(*scenario)


def check_scenario(cfg: SafetyConfig, reset_pos: Any, steps: list[Step]) -> None:
    """Run the steps, checking S1 and S2 invariants after each."""
    chain = SafetyChain(cfg)
    chain.reset(reset_pos)
    n = cfg.n_joints
    lo = np.asarray(cfg.position_lower_rad) + cfg.position_margin_rad
    hi = np.asarray(cfg.position_upper_rad) - cfg.position_margin_rad
    vmax, amax = np.asarray(cfg.velocity_limit_rad_s), np.asarray(cfg.acceleration_limit_rad_s2)
    period = cfg.control_period_s

    # The test's own model of the chain's rate-limit state.
    q0 = _measured(reset_pos, n)
    margin = cfg.plausibility_position_margin_rad
    plausible = q0 is not None and bool(
        (
            (q0 >= np.asarray(cfg.position_lower_rad) - margin) & (q0 <= np.asarray(cfg.position_upper_rad) + margin)
        ).all()
    )
    # The chain anchors at a measurement only when it is plausible (10 rad on a ±2.9 rad joint is a sensor fault).
    prev: np.ndarray | None = np.clip(q0, lo, hi) if plausible and q0 is not None else None
    sensor = next(link for link in chain.links if isinstance(link, PlausibilityLink))
    v_prev = np.zeros(n)
    last_now: float | None = None
    now = 100.0
    for step in steps:
        now_arg = now + step.dt if math.isfinite(step.dt) else step.dt
        kwargs = _kwargs(now_arg if math.isfinite(now_arg) else now, step)
        kwargs["now_s"] = now_arg

        preview = chain.preview(step.command, **kwargs)
        again = chain.preview(preview.action, **kwargs)
        result = chain.filter(step.command, **kwargs)

        a = result.action
        assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (n,)
        assert np.isfinite(a).all()
        assert set(result.changed_by) <= set(chain.counters) and len(result.reasons) == len(result.changed_by)
        np.testing.assert_array_equal(preview.action, a)  # preview == filter
        np.testing.assert_array_equal(again.action, a)  # S2: filter(filter(u)) == filter(u)
        assert preview.changed_by == result.changed_by

        if cfg.command_interface == "position":
            assert (a >= lo).all() and (a <= hi).all()
        elif cfg.command_interface == "velocity":
            assert (np.abs(a) <= vmax).all()
        else:
            assert (np.abs(a) <= np.asarray(cfg.effort_limit)).all()
        if isinstance(step.command, np.ndarray) and step.command.dtype == np.float64:
            if step.command.shape == (n,) and not np.isfinite(step.command).all():
                assert result.held  # NaN/Inf is never clipped into a command

        time_ok = isinstance(now_arg, float) and math.isfinite(now_arg)
        dt = (now_arg - last_now) if (time_ok and last_now is not None) else period
        dt_eff = min(dt, period)
        q_meas = _measured(step.joint_pos, n)
        if not result.held:
            assert time_ok and dt > 0
            if cfg.command_interface == "position":
                start = prev if prev is not None else np.clip(q_meas, lo, hi)  # type: ignore[arg-type]
                v = (a - start) / dt_eff
                assert (np.abs(v) <= vmax * (1 + TOL) + TOL).all()
                if v.any():  # a command equal to the previous target is a stop, exempt like the hold
                    assert (np.abs(v - v_prev) <= amax * dt_eff * (1 + TOL) + 1e-6).all()
                v_prev = v
                prev = a.copy()
            elif cfg.command_interface == "velocity":
                assert q_meas is not None
                inside = (q_meas >= lo) & (q_meas <= hi)
                pred = q_meas + a * period
                assert ((pred <= hi + 1e-9) | ~inside).all() and ((pred >= lo - 1e-9) | ~inside).all()
                if a.any() and "position_limit" not in result.changed_by:
                    assert (np.abs(a - v_prev) <= amax * dt_eff * (1 + TOL) + 1e-9).all()
                v_prev = a.copy()
        else:
            v_prev = np.zeros(n)
            suspect = sensor.measurement_suspect  # a suspect reading never becomes the hold target
            if cfg.command_interface == "position" and prev is None and q_meas is not None and not suspect:
                prev = np.clip(q_meas, lo, hi)
            if cfg.command_interface == "position" and prev is not None:
                np.testing.assert_array_equal(a, prev)  # the hold is the last committed target
            elif cfg.command_interface != "position":
                assert not a.any()
        if time_ok:
            last_now = now_arg
            now = now_arg


@settings(max_examples=300, deadline=None)
@given(configs(), st.data())
def test_s2_safe_command_passes_bitwise(cfg: SafetyConfig, data: st.DataObject) -> None:
    n = cfg.n_joints
    lo = np.asarray(cfg.position_lower_rad) + cfg.position_margin_rad
    hi = np.asarray(cfg.position_upper_rad) - cfg.position_margin_rad
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    q0 = mid + half * np.asarray(data.draw(st.lists(st.floats(-0.5, 0.5), min_size=n, max_size=n)))
    vmax, amax = np.asarray(cfg.velocity_limit_rad_s), np.asarray(cfg.acceleration_limit_rad_s2)
    dt = cfg.control_period_s
    # Strictly inside: half the velocity, acceleration (from rest) and braking allowances. q0 is at least half/2
    # from each limit; a speed v can still brake within half/4 when v·dt + v²/(2a) <= half/4.
    v_brake = -amax * dt + np.sqrt((amax * dt) ** 2 + 2.0 * amax * 0.25 * half)
    v_safe = np.minimum(np.minimum(vmax, amax * dt), v_brake)
    step_max = 0.5 * v_safe * dt
    frac = np.asarray(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n)))
    if cfg.command_interface == "position":
        u = q0 + frac * step_max
    elif cfg.command_interface == "velocity":
        u = frac * 0.5 * v_safe
    else:
        u = frac * 0.5 * np.asarray(cfg.effort_limit)
    chain = SafetyChain(cfg)
    chain.reset(q0)
    kwargs = {"now_s": 5.0, "joint_pos_rad": q0, "joint_vel_rad_s": None}
    result = chain.filter(u, observation_stamp_s=5.0, command_stamp_s=5.0, **kwargs)
    assert result.changed_by == () and result.reasons == () and not result.held
    assert result.action.tobytes() == u.astype(np.float64).tobytes()
    assert result.action is not u
    assert chain.counters == dict.fromkeys(chain.counters, 0)
