"""Closed loop (RELIABILITY S5): a policy that drives the end effector straight into a sphere, through the whole
chain with the cbf link, never brings any control point inside the sphere by the URDF's own forward kinematics."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.safety.chain import build_chain
from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.links.cbf import CbfLink
from tests.safety.cbf_setup import CHAIN_LINKS, PANDA_HOME, PERIOD_S, SPHERE_M, panda_chain, panda_config

KIN = panda_chain()
CENTER, RADIUS = np.array(SPHERE_M[:3]), SPHERE_M[3]


def _true_clearance_m(q: np.ndarray) -> float:
    """min over control points of ‖p − c‖ − r, from the exact FK (not the filter's one-step linearization)."""
    points, _ = KIN.point_jacobians(q)
    return float(np.linalg.norm(points - CENTER, axis=1).min() - RADIUS)


@pytest.mark.parametrize("interface", ["velocity", "position"])
@pytest.mark.parametrize("speed_m_s", [0.3, 1.0])
def test_driving_into_a_sphere_never_enters_it(interface: str, speed_m_s: float) -> None:
    config = panda_config(interface)
    chain = build_chain(config, KIN)
    assert tuple(link.name for link in chain.links) == CHAIN_LINKS
    cbf = next(link for link in chain.links if isinstance(link, CbfLink))
    q, t = PANDA_HOME.copy(), 0.0
    chain.reset(q)
    worst = np.inf
    ee_gap = np.inf
    v = np.zeros(7)
    for _ in range(300):
        # Straight at the sphere's centre, whatever the rest of the arm does (a pseudo-inverse policy).
        direction = CENTER - KIN.position(q)
        u = np.linalg.pinv(KIN.jacobian(q)[:3]) @ (speed_m_s * direction / np.linalg.norm(direction))
        command = q + u * PERIOD_S if interface == "position" else u
        res = chain.filter(
            command, now_s=t, joint_pos_rad=q, joint_vel_rad_s=v, observation_stamp_s=t, command_stamp_s=t
        )
        assert np.isfinite(res.action).all()
        q_next = res.action if interface == "position" else q + res.action * PERIOD_S
        v = (q_next - q) / PERIOD_S
        q, t = q_next, t + PERIOD_S
        worst = min(worst, _true_clearance_m(q))
        ee_gap = min(ee_gap, float(np.linalg.norm(KIN.position(q) - CENTER)) - RADIUS)
    assert worst >= 0.0, f"a control point entered the sphere by {-worst:.4g} m"
    # The barrier did the work: the end effector came up to the margin (0.01 m) and the filter acted.
    assert ee_gap <= 0.015
    assert chain.counters["cbf"] > 10
    assert chain.counters["held"] <= 3, chain.counters
    assert cbf.stats.solves > 0


def test_chain_builds_with_the_cbf_link_and_without_a_workspace_box() -> None:
    config = panda_config()
    assert not config.has_workspace
    chain = build_chain(config, KIN)
    assert "cbf" in [link.name for link in chain.links]
    for key in ("cbf", "cbf_infeasible", "cbf_timeout", "cbf_error"):
        assert chain.counters[key] == 0
    with pytest.raises(ValueError, match="needs the robot's UrdfChain"):
        build_chain(config, KIN.position)
    with pytest.raises(ValueError, match="needs the robot's UrdfChain"):
        build_chain(config)
    # After the clamp a filter may not stand (kinds are checked when the chain is built).
    links = [name for name in CHAIN_LINKS if name != "cbf"]
    data = config.to_json()
    data["links"] = [*links, "cbf"]
    with pytest.raises(ValueError, match="only check links may follow"):
        build_chain(SafetyConfig.from_dict(data), KIN)


def test_behind_the_cbf_the_final_clamp_never_cuts_at_a_joint_limit_with_a_lagging_servo() -> None:
    """A policy that drives every joint at full speed toward its limits, on a servo whose reading lags the commands
    (first-order, 3 periods): the clamp after the filter judges the limits from where the commands already sent
    put the joints, and so must the filter's joint rows, or the clamp cuts the filtered command (and with it any
    obstacle guarantee the filter gave; it did on ~60% of the steps of SAC exploration on the pillar task)."""
    config = panda_config("velocity")
    chain = build_chain(config, KIN)
    rng = np.random.default_rng(0)
    lower, upper = np.array(config.position_lower_rad), np.array(config.position_upper_rad)
    vmax = np.array(config.velocity_limit_rad_s)
    q, v, t = PANDA_HOME.copy(), np.zeros(7), 0.0
    chain.reset(q)
    worst = -np.inf
    for k in range(600):
        if k % 100 == 0:
            sign = rng.choice([-1.0, 1.0], size=7)  # a new push every second, each joint toward one of its limits
        res = chain.filter(
            sign * 3.0 * vmax, now_s=t, joint_pos_rad=q, joint_vel_rad_s=v, observation_stamp_s=t, command_stamp_s=t
        )
        v = v + (res.action - v) / 3.0  # the servo follows its command with a 3-period lag
        q, t = q + v * PERIOD_S, t + PERIOD_S
        worst = max(worst, float(np.max(q - upper)), float(np.max(lower - q)))
    if chain.counters["cbf_timeout"] == 0:  # a solve preempted on a busy machine holds, and a stop overshoots here
        assert worst <= 1e-9, f"a joint went {worst:.3g} rad past its limit"
    assert chain.counters["cbf"] > 100  # the filter did the limiting ...
    assert chain.counters["position_limit"] == 0, chain.counters  # ... so the clamp found nothing left to cut
    assert chain.counters["held"] == chain.counters["cbf_timeout"], chain.counters
