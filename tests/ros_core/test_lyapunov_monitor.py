"""The Lyapunov monitor link and its control-loop actions (report, hold, fallback, e-stop), with a fake clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_rl.safety import SafetyConfig, build_chain
from robot_rl.safety.links.lyapunov import LyapunovLink, LyapunovMonitorConfig
from ros_nodes.core.control_step import ControlStep, OnnxChunkPolicy
from ros_nodes.core.deployment import build_deployment

CART_JOINTS = ["slider_to_cart", "cart_to_pole"]
PERIOD = 0.02


def _config(**monitor: Any) -> SafetyConfig:
    base = SafetyConfig.for_joints(["j"], "velocity", 0.05, [-1.0], [1.0], [1.0])
    links = (*base.links, "lyapunov")
    return dataclasses.replace(base, links=links, link_params={"lyapunov": monitor})


def test_the_monitor_trips_after_n_failed_ticks_in_a_row() -> None:
    link = LyapunovLink(_config(consecutive_ticks=3, tolerance=0.01))
    assert [link.feed(v) for v in (5.0, 4.0, 3.0, 3.005)] == [False] * 4  # decreasing, then within tolerance
    assert link.counters["lyapunov"] == 0
    assert [link.feed(v) for v in (3.1, 3.2)] == [False, False]
    link.feed(None)  # the policy did not drive: the stretch is broken, so is the streak
    assert [link.feed(v) for v in (3.3, 3.4, 3.5)] == [False] * 3  # two rises after the break: not yet three
    assert link.counters["lyapunov"] == 4 and not link.tripped
    link.reset()
    trips = [link.feed(v) for v in (1.0, 1.1, 1.2, 1.3, 1.4)]
    assert trips == [False, False, False, True, False]  # the 3rd rise trips, once per episode
    assert link.tripped and link.trips == 1 and link.counters["lyapunov_trip"] == 1
    assert "3 failed ticks in a row" in link.trip_reason and "1.2 -> 1.3" in link.trip_reason


def test_a_critic_that_returns_nan_fails_the_tick() -> None:
    link = LyapunovLink(_config(consecutive_ticks=2))
    link.feed(1.0)
    assert not link.feed(float("nan")) and link.counters["lyapunov"] == 1
    assert "the critic returned nan" in link.last_reasons["lyapunov"]
    assert link.feed(float("inf"))


def test_the_cost_term_tightens_the_condition() -> None:
    link = LyapunovLink(_config(consecutive_ticks=1, alpha3=1.0))
    link.feed(1.0)
    assert not link.feed(0.9, cost=0.05)  # decrease 0.1 > α₃·c = 0.05
    assert link.feed(0.85, cost=0.2)  # decrease 0.05 < 0.2: fails


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"consecutive_ticks": 0}, "consecutive_ticks must be an integer >= 1"),
        ({"tolerance": -1.0}, "tolerance must be a finite number >= 0"),
        ({"on_violation": "panic"}, "on_violation must be one of"),
        ({"on_violation": "fallback"}, "needs lyapunov.fallback_bundle"),
        ({"consecutive": 3}, r"unknown lyapunov parameter\(s\) \['consecutive'\]"),
    ],
)
def test_bad_monitor_parameters_are_named(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LyapunovMonitorConfig.from_params(params)


def test_a_hold_trip_holds_until_the_next_episode() -> None:
    chain = build_chain(_config(consecutive_ticks=2, on_violation="hold"))
    chain.reset(np.zeros(1))
    link = next(k for k in chain.links if isinstance(k, LyapunovLink))

    def send(t: float) -> Any:
        return chain.filter(
            np.array([0.1]), now_s=t, joint_pos_rad=np.zeros(1), joint_vel_rad_s=None,
            observation_stamp_s=t, command_stamp_s=t,
        )  # fmt: skip

    assert not send(0.0).held
    link.feed(1.0), link.feed(2.0), link.feed(3.0)
    held = send(0.05)
    assert held.held and held.reasons[0].startswith("lyapunov_hold:")
    assert send(0.10).held and chain.counters["lyapunov_hold"] == 2
    chain.reset(np.zeros(1))
    assert not send(0.15).held


class _Constant:
    """A plain chunk policy commanding a constant force (the fallback stand-in)."""

    chunk_size = 1
    obs_history = 1

    def __init__(self, value: float) -> None:
        self.value = value

    def plan(self, observation: Any) -> Any:
        return np.array([[self.value]])


def _step(bundle: Path, critic: Iterator[float] | None, **monitor: Any) -> ControlStep:
    dep = build_deployment({"bundle_dir": str(bundle)})
    cfg = dataclasses.replace(
        dep.safety_config, links=(*dep.safety_config.links, "lyapunov"), link_params={"lyapunov": monitor}
    )
    fallback = _Constant(0.0) if monitor.get("on_violation") == "fallback" else None
    step = ControlStep(
        OnnxChunkPolicy(dep.policy), dep.step.assembler, dep.step.command, build_chain(cfg),
        lyapunov=(lambda obs, action: next(critic)) if critic is not None else None,
        fallback_policy=fallback,
    )  # fmt: skip
    step.reset()
    return step


def _run(step: ControlStep, ticks: int, first_tick: int = 0) -> list[Any]:
    out = []
    for i in range(first_tick, first_tick + ticks):
        t = i * PERIOD
        step.assembler.update_joint_state(CART_JOINTS[::-1], [0.05, 0.0], [0.0, 0.0], arrival_s=t)
        out.append(step.tick(t))
    return out


def test_report_counts_and_records_the_trip_but_keeps_driving(cartpole_lqr_bundle: Path) -> None:
    step = _step(cartpole_lqr_bundle, iter([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), consecutive_ticks=3)
    records = _run(step, 6)
    assert not any(r.safety_held for r in records)
    assert [any(x.startswith("lyapunov_trip:") for x in r.safety_reasons) for r in records] == [
        False, False, False, True, False, False,
    ]  # fmt: skip
    assert step.chain.counters["lyapunov"] == 5 and step.chain.counters["lyapunov_trip"] == 1


def test_estop_trip_latches_the_estop(cartpole_lqr_bundle: Path) -> None:
    step = _step(cartpole_lqr_bundle, iter([1.0, 2.0, 3.0] + [0.0] * 10), consecutive_ticks=2, on_violation="estop")
    records = _run(step, 5)
    assert [r.safety_held for r in records] == [False, False, True, True, True]
    assert step.chain.estop_engaged


def test_fallback_trip_switches_to_the_fallback_policy(cartpole_lqr_bundle: Path) -> None:
    step = _step(
        cartpole_lqr_bundle, iter([1.0, 2.0, 3.0] + [9.0] * 10), consecutive_ticks=2, on_violation="fallback",
        fallback_bundle="unused-here",
    )  # fmt: skip
    records = _run(step, 6)
    assert step.fell_back
    assert records[1].policy_action[0] != 0.0  # the LQR bundle pushes the tilted pole back
    assert all(r.policy_action[0] == 0.0 for r in records[3:])  # the fallback's constant command
    assert step.chain.counters["lyapunov_trip"] == 1  # the fallback is not judged by the main bundle's critic


def test_a_failing_critic_counts_as_failed_ticks(cartpole_lqr_bundle: Path) -> None:
    def broken() -> Iterator[float]:
        yield 1.0
        while True:
            raise RuntimeError("graph failed")

    step = _step(cartpole_lqr_bundle, broken(), consecutive_ticks=2)
    _run(step, 4)
    assert step.lyapunov_errors == 3 and step.chain.counters["lyapunov_trip"] == 1


def test_monitor_and_critic_must_come_together(cartpole_lqr_bundle: Path) -> None:
    with pytest.raises(ValueError, match="needs the bundle's Lyapunov critic"):
        _step(cartpole_lqr_bundle, None)
    dep = build_deployment({"bundle_dir": str(cartpole_lqr_bundle)})
    with pytest.raises(ValueError, match="the safety chain has no 'lyapunov' link"):
        ControlStep(
            OnnxChunkPolicy(dep.policy), dep.step.assembler, dep.step.command, build_chain(dep.safety_config),
            lyapunov=lambda obs, action: 0.0,
        )  # fmt: skip


def test_the_monitor_reports_on_diagnostics(cartpole_lqr_bundle: Path) -> None:
    from ros_nodes.core.node_health import stability_entry

    step = _step(cartpole_lqr_bundle, iter([3.0, 2.0, 1.0, 2.0, 3.0, 4.0]), consecutive_ticks=3)
    health = step.stability_health()
    assert health is not None and stability_entry(health).message.startswith("not fed yet")
    _run(step, 3)
    entry = stability_entry(step.stability_health())  # type: ignore[arg-type]
    assert entry.level == 0 and entry.values["judged"] == "3"
    _run(step, 3, first_tick=3)  # three rises in a row: tripped
    entry = stability_entry(step.stability_health())  # type: ignore[arg-type]
    assert entry.level == 2 and entry.values["trips"] == "1" and "lyapunov_trip" in entry.message
    dep_free = build_deployment({"bundle_dir": str(cartpole_lqr_bundle)})
    assert dep_free.step.stability_health() is None  # no lyapunov link: no entry
