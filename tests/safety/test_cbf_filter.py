"""The cbf link's invariants (RELIABILITY S1, S2, S4): every output meets every barrier row and bound or the link
holds; safe commands pass bit for bit without a solve; filtering is idempotent and continuous; infeasible and
slow solves hold and are counted; every QP backend finds the same projection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_rl.safety.cbf import ROW_TOL, CbfFilter, make_backend
from robot_rl.safety.cbf.qp import QpResult
from robot_rl.safety.links.cbf import CbfLink
from tests.safety.cbf_setup import PANDA_HOME, PANDA_LIMITS, PERIOD_S, panda_chain, panda_config, step

KIN = panda_chain()
LOWER = np.array(PANDA_LIMITS["position_lower_rad"])
UPPER = np.array(PANDA_LIMITS["position_upper_rad"])
VMAX = np.array(PANDA_LIMITS["velocity_limit_rad_s"])
AMAX = np.array(PANDA_LIMITS["acceleration_limit_rad_s2"])

_q = st.lists(st.floats(0.0, 1.0), min_size=7, max_size=7).map(lambda f: LOWER + np.array(f) * (UPPER - LOWER))
_scale = st.sampled_from([0.1, 1.0, 10.0, 1e6, 1e300])
_u = st.tuples(st.lists(st.floats(-1.0, 1.0), min_size=7, max_size=7), _scale).map(lambda t: np.array(t[0]) * t[1])
_v = st.lists(st.floats(-1.0, 1.0), min_size=7, max_size=7).map(lambda f: np.array(f) * VMAX)


def _link(interface: str = "velocity", **cbf: Any) -> CbfLink:
    return CbfLink(panda_config(interface, **cbf), KIN)


def _meets_rows_and_bounds(
    filt: CbfFilter, q: np.ndarray, u: np.ndarray, v_prev: np.ndarray, tol: float = 0.0, horizon_s: float = PERIOD_S
) -> None:
    a, b, _ = filt.rows(q, horizon_s)
    lb, ub = filt.bounds(v_prev, PERIOD_S)
    assert (a @ u - b).max(initial=-1.0) <= ROW_TOL * 1.01 + tol
    assert np.all(u >= lb - tol) and np.all(u <= ub + tol)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=_q, u=_u, v_prev=_v)
def test_output_meets_every_row_and_bound_or_holds(q: np.ndarray, u: np.ndarray, v_prev: np.ndarray) -> None:
    link = VELOCITY_LINK
    before = u.copy()
    out, reasons = link.filter(u, step(q, v_prev))
    np.testing.assert_array_equal(u, before)  # the input is never mutated
    if out is None:
        assert len(reasons) == 1 and reasons[0][0] in link.keys and reasons[0][1].startswith(reasons[0][0] + ":")
        return
    assert np.isfinite(out).all()
    if out is u:
        assert reasons == ()
    else:
        assert [k for k, _ in reasons] == ["cbf"]
    if not (out is u and not u.any()):  # a velocity stop passes without the acceleration box (as in the clamp)
        # a velocity command's rows hold over the link's look-ahead (cbf.lookahead_periods)
        _meets_rows_and_bounds(link.filter_, q, out, v_prev, horizon_s=PERIOD_S * link.filter_.config.lookahead_periods)


VELOCITY_LINK = _link()


@settings(max_examples=60, deadline=None)
@given(q=_q, u=_u, v_prev=_v)
def test_position_interface_output_meets_every_row_or_holds(q: np.ndarray, u: np.ndarray, v_prev: np.ndarray) -> None:
    link = POSITION_LINK
    target = q + np.clip(u, -1e6, 1e6) * PERIOD_S
    out, _ = link.filter(target, step(q, v_prev, prev_target=q))
    if out is None:
        return
    assert np.isfinite(out).all()
    if out is not target:
        # target = q + u·T and back rounds: a few ulps of the velocity
        _meets_rows_and_bounds(link.filter_, q, (out - q) / PERIOD_S, v_prev, tol=1e-9)


POSITION_LINK = _link("position")


def _counting(filt: CbfFilter) -> list[int]:
    calls = [0]
    solve = filt.backend.solve

    def counted(*args: Any) -> QpResult:
        calls[0] += 1
        return solve(*args)

    filt.backend.solve = counted  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize("interface", ["velocity", "position"])
def test_a_safe_command_passes_bit_for_bit_without_a_solve(interface: str) -> None:
    link = _link(interface)
    calls = _counting(link.filter_)
    rng = np.random.default_rng(0)
    for _ in range(50):
        u = rng.uniform(-0.05, 0.05, 7)
        action = PANDA_HOME + u * PERIOD_S if interface == "position" else u
        out, reasons = link.filter(action, step(PANDA_HOME, np.zeros(7), prev_target=PANDA_HOME))
        assert out is action and reasons == ()
    assert calls[0] == 0
    assert link.stats.solves == 0 and link.stats.last_status == "pass"


def _toward_sphere(q: np.ndarray, speed_m_s: float = 0.5) -> np.ndarray:
    """Joint velocities that move the grasp target straight at the sphere (+x)."""
    return np.linalg.pinv(KIN.jacobian(q)[:3]) @ np.array([speed_m_s, 0.0, 0.0])


def _near_sphere() -> np.ndarray:
    """A configuration with the grasp target 0.012 m outside the sphere's clearance (the barrier binds)."""
    q = PANDA_HOME.copy()
    for _ in range(200):
        gap = 0.45 - 0.05 - 0.01 - 0.012 - KIN.position(q)[0]
        q = q + np.linalg.pinv(KIN.jacobian(q)[:3]) @ np.array([gap, 0.0, 0.0])
    return q


def test_idempotent_and_the_solve_is_used() -> None:
    link = _link()
    q = _near_sphere()
    rng = np.random.default_rng(1)
    solved = 0
    for _ in range(40):
        v_prev = _toward_sphere(q, rng.uniform(0.0, 0.3))
        u = v_prev + rng.normal(0, 0.05, 7) + _toward_sphere(q, 0.05)
        out, _ = link.filter(u, step(q, v_prev))
        if out is None or out is u:
            continue
        solved += link.stats.last_status == "solved"
        again, again_reasons = link.filter(out, step(q, v_prev))
        assert again is not None
        assert np.abs(again - out).max() <= 1e-6
        assert again is out and again_reasons == ()  # in fact bit-exact: the output meets the rows within ROW_TOL
    assert solved >= 10


def test_continuous_in_the_command() -> None:
    """The QP's identity Hessian makes the output a projection onto a convex set: 1-Lipschitz in the command."""
    # One period of look-ahead: with three, this state (0.012 m from the clearance, approaching) cannot brake in
    # time within the acceleration limit, so every call would hold and there would be nothing to compare.
    link = _link(lookahead_periods=1.0)
    q = _near_sphere()
    v_prev = _toward_sphere(q, 0.2)
    rng = np.random.default_rng(2)
    worst = 0.0
    for _ in range(60):
        u1 = v_prev + rng.normal(0, 0.1, 7)
        u2 = u1 + rng.normal(0, 1e-3, 7)
        o1, _ = link.filter(u1, step(q, v_prev))
        o2, _ = link.filter(u2, step(q, v_prev))
        if o1 is None or o2 is None:
            continue
        worst = max(worst, float(np.linalg.norm(o1 - o2) / np.linalg.norm(u1 - u2)))
    assert 0.0 < worst <= 1.0 + 1e-3


def test_infeasible_holds_and_is_counted() -> None:
    # Two contradictory half-spaces (x <= 0.2 and x >= 0.3 for every control point): no command satisfies both.
    link = _link(halfspaces=[1.0, 0.0, 0.0, 0.2, -1.0, 0.0, 0.0, -0.3])
    out, reasons = link.filter(np.full(7, 0.1), step(PANDA_HOME, np.zeros(7)))
    assert out is None
    assert reasons[0][0] == "cbf_infeasible" and "infeasible" in reasons[0][1] and "half-space" in reasons[0][1]
    link.record(*reasons[0])
    assert link.counters["cbf_infeasible"] == 1 and link.stats.infeasible == 1
    # The arm inside the obstacle: a point at a sphere's centre has no way out to first order.
    inside = _link(spheres_m=[*KIN.position(PANDA_HOME), 0.05], halfspaces=[])
    out, reasons = inside.filter(_toward_sphere(PANDA_HOME), step(PANDA_HOME, np.zeros(7)))
    assert out is None and reasons[0][0] == "cbf_infeasible"


def test_a_solve_over_the_time_budget_holds_as_timeout() -> None:
    link = _link(time_budget_s=1e-9)
    q = _near_sphere()
    out, reasons = link.filter(_toward_sphere(q), step(q, _toward_sphere(q, 0.2)))
    assert out is None and reasons[0][0] == "cbf_timeout" and "timeout" in reasons[0][1]
    assert link.stats.timeouts == 1


def test_a_raising_solver_holds_never_raises() -> None:
    link = _link()

    def boom(*_: Any) -> tuple[None, str]:
        raise RuntimeError("solver crashed")

    link.filter_.backend._solve = boom  # type: ignore[method-assign]
    q = _near_sphere()
    out, reasons = link.filter(_toward_sphere(q), step(q, _toward_sphere(q, 0.2)))
    assert out is None and reasons[0][0] == "cbf_error" and "solver crashed" in reasons[0][1]
    out, reasons = link.filter(np.zeros(7), step(np.full(7, np.nan), np.zeros(7)))
    assert out is None and reasons[0][0] == "cbf" and "no valid joint measurement" in reasons[0][1]


# Not "qpsolvers:proxqp": through qpsolvers 4.13, ProxQP 0.8 calls the second problem below (u = 0 is feasible)
# primal infeasible after 18 iterations, cold or warm; the direct ProxSuite backend solves it.
BACKENDS = ["daqp", "osqp", "proxsuite", "qpsolvers:daqp", "qpsolvers:osqp"]


def test_every_backend_finds_the_same_projection() -> None:
    rng = np.random.default_rng(3)
    backends = {name: make_backend(name, 7, 1.0) for name in BACKENDS}
    compared = 0
    for _ in range(40):
        a = rng.normal(size=(24, 7))
        b = rng.uniform(0.01, 1.0, 24)  # u = 0 is feasible
        b[rng.random(24) < 0.2] = np.inf  # inactive rows, as the filter marks them
        lb, ub = -rng.uniform(0.2, 2.0, 7), rng.uniform(0.2, 2.0, 7)
        u_ref = rng.normal(0.0, 2.0, 7)
        sols = {name: be.solve(u_ref, a, b, lb, ub) for name, be in backends.items()}
        ref = sols["daqp"].u
        assert ref is not None
        for name, res in sols.items():
            assert res.u is not None and res.status.startswith("solved"), (name, res.status)
            assert np.abs(res.u - ref).max() <= 1e-5, (name, res.u - ref)
        compared += 1
    assert compared == 40


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_reports_infeasibility(name: str) -> None:
    backend = make_backend(name, 3, 1.0)
    a = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    res = backend.solve(np.zeros(3), a, np.array([-0.5, -0.5]), -np.ones(3), np.ones(3))  # x <= -0.5 and x >= 0.5
    assert res.u is None and res.status.split(" ")[0].rstrip(":") in ("infeasible", "error"), res.status
