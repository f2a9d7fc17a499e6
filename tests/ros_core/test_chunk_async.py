"""Asynchronous chunk planning with samplers slower than the control period: every tick commands, no chunk element
runs after its own period, and a planner too slow for its chunks gives counted holds, never stale actions.

The deterministic tests drive the real worker thread with a simulated clock: the fake sampler blocks its thread
until the simulated clock has advanced by its latency, and the tick loop lets the worker settle (finish what is due,
or block on the future) before and after each tick, so which tick a chunk arrives at is exact. One test runs in
real time with a sampler that sleeps.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from robot_rl.data.step_record import StepRecord
from ros_nodes.core.chunk_executor import ChunkExecutionConfig
from ros_nodes.core.control_step import ControlStep, HumanInput
from tests.ros_core.chunk_rig import PERIOD, feed, make_step

SCALE = 1e-3
"""Chunk element i planned from the observation of tick k is SCALE·(k + i): the action meant for tick k + i."""
H = 8


class SimClock:
    """The tick loop's clock; samplers wait on it."""

    def __init__(self) -> None:
        self.cv = threading.Condition()
        self.now_s = 0.0

    def set(self, now_s: float) -> None:
        with self.cv:
            self.now_s = now_s
            self.cv.notify_all()


class SlowSampler:
    """A chunk policy that takes `latency_s` of simulated time per plan (blocking the thread that calls it)."""

    def __init__(self, clock: SimClock, latency_s: float, chunk_size: int = H, execution_horizon: int = H) -> None:
        self.clock = clock
        self.latency_s = latency_s
        self.chunk_size = chunk_size
        self.execution_horizon = execution_horizon
        self.waiting_until: float | None = None
        self.fail_next: BaseException | None = None
        self.calls = 0

    def plan(self, history: np.ndarray) -> np.ndarray:
        self.calls += 1
        with self.clock.cv:
            until = self.clock.now_s + self.latency_s
            self.waiting_until = until
            done = self.clock.cv.wait_for(lambda: self.clock.now_s >= until - 1e-9, timeout=20.0)
            self.waiting_until = None
        if not done:
            raise RuntimeError("simulated clock stopped")
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        tick = float(history[-1])  # the newest observation's tick number
        return SCALE * (tick + np.arange(self.chunk_size, dtype=np.float64))[:, None]


def _settle(step: ControlStep, sampler: SlowSampler, clock: SimClock) -> None:
    """Wait (real time) until the worker is idle or blocked on a future simulated time."""
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        with clock.cv:
            until = sampler.waiting_until
            blocked = until is not None and until > clock.now_s + 1e-9
        if blocked or not step.executor.planning:
            return
        time.sleep(2e-4)
    raise AssertionError("the planner thread did not settle")


def _run(
    step: ControlStep, sampler: SlowSampler, clock: SimClock, ticks: range, latency_at: dict[int, float] | None = None
) -> list[StepRecord]:
    records = []
    for k in ticks:
        if latency_at and k in latency_at:
            sampler.latency_s = latency_at[k]
        clock.set(k * PERIOD)
        _settle(step, sampler, clock)
        feed(step, k)
        records.append(step.tick(k * PERIOD))
        _settle(step, sampler, clock)
    return records


def _close(step: ControlStep, clock: SimClock) -> None:
    clock.set(1e9)  # release a plan still waiting on the simulated clock, so the worker can stop
    step.close()


def _async_step(sampler: SlowSampler, mode: str = "receding", **kw: object) -> ControlStep:
    return make_step(sampler, execution=ChunkExecutionConfig(mode=mode, async_inference=True, **kw))  # type: ignore[arg-type]


def _assert_never_stale(records: list[StepRecord], first_tick: int = 0) -> None:
    """Every action the policy gave is the one planned for its own tick, from a chunk element before its end."""
    for k, rec in enumerate(records, start=first_tick):
        if np.isfinite(rec.policy_action).all():
            assert rec.policy_action[0] == pytest.approx(SCALE * k, rel=1e-12, abs=1e-15), (k, rec.policy_action)
            assert 0 <= rec.chunk_step < H and rec.chunk_index >= 0


@pytest.mark.parametrize("mode", ["receding", "ensemble"])
def test_a_sampler_slower_than_the_period_misses_no_tick(mode: str) -> None:
    clock = SimClock()
    sampler = SlowSampler(clock, latency_s=2.5 * PERIOD)  # 2.5 control periods per plan, H = H_a = 8
    step = _async_step(sampler, mode)
    try:
        records = _run(step, sampler, clock, range(60))
    finally:
        _close(step, clock)
    _assert_never_stale(records)
    # The first chunk is planned from tick 0 and arrives at tick 3: the robot holds until then, never after.
    assert [np.isfinite(r.policy_action).all() for r in records[:4]] == [False, False, False, True]
    assert all(r.policy_error.startswith("planning the first chunk") and r.safety_held for r in records[:3])
    assert all(not r.safety_held and r.source == "policy" for r in records[3:])  # zero missed ticks
    np.testing.assert_allclose([r.executed_action[0] for r in records[3:]], SCALE * np.arange(3, 60), rtol=1e-12)
    # Each chunk arrives 3 periods after its observation: its first 3 elements (their time passed) are skipped.
    assert min(r.chunk_step for r in records[3:]) == 3
    stats = step.chunk_stats()
    assert stats.missed_actions == 0 and stats.late_chunks == 0 and stats.stale_chunks == 0 and not stats.late_now
    assert stats.asynchronous and stats.async_plans == stats.plans >= 10 and step.policy_errors == 0
    boundaries = [k for k, r in enumerate(records) if r.replanned]
    assert len(boundaries) == stats.plans
    if mode == "receding":
        # the next plan starts when latency (3 periods) + margin (1) covers the actions left: every 4 ticks
        assert stats.lead_steps == 4 and np.diff(boundaries).tolist() == [4] * (len(boundaries) - 1)
        assert all(r.chunk_step < H for r in records) and stats.overrun_steps == 0


def test_a_planner_slower_than_the_whole_chunk_holds_and_counts_never_runs_stale_actions() -> None:
    clock = SimClock()
    sampler = SlowSampler(clock, latency_s=2.5 * PERIOD, execution_horizon=6)
    step = _async_step(sampler)
    try:
        # fine, then 10 periods per plan (longer than the 8-period chunk), then fine again
        records = _run(step, sampler, clock, range(110), latency_at={20: 10 * PERIOD, 70: 2.5 * PERIOD})
    finally:
        _close(step, clock)
    _assert_never_stale(records)
    late = [k for k, r in enumerate(records) if r.policy_error.startswith("late chunk")]
    assert late and min(late) > 20 and max(late) < 85  # holds only while the planner is too slow
    assert all(records[k].safety_held and records[k].executed_action[0] == 0.0 for k in late)  # velocity hold
    stats = step.chunk_stats()
    assert stats.missed_actions == len(late)
    assert stats.stale_chunks >= 3 and stats.late_chunks >= stats.stale_chunks + 1  # + the one that ended the holds
    assert stats.overrun_steps > 0  # ran past H_a = 6 (still on time) before the chunk ran out
    assert all(np.isfinite(r.policy_action).all() for r in records[85:])  # recovered: commands again every tick
    assert not stats.late_now and step.policy_errors == 0


def test_a_configured_lead_starts_the_next_plan_that_many_actions_early() -> None:
    clock = SimClock()
    sampler = SlowSampler(clock, latency_s=1.5 * PERIOD)
    step = _async_step(sampler, lead_steps=6)
    try:
        records = _run(step, sampler, clock, range(40))
    finally:
        _close(step, clock)
    _assert_never_stale(records)
    boundaries = [k for k, r in enumerate(records) if r.replanned]
    # first chunk at tick 2 (slot 2); the next plan starts when 6 of 8 are left (slot 2), arrives 2 ticks later
    assert boundaries[:3] == [2, 4, 6] and step.chunk_stats().missed_actions == 0


def test_a_failed_plan_is_a_policy_error_and_holds_then_recovers() -> None:
    clock = SimClock()
    sampler = SlowSampler(clock, latency_s=2.5 * PERIOD)
    step = _async_step(sampler)
    try:
        records = _run(step, sampler, clock, range(12))
        sampler.fail_next = RuntimeError("sampler produced a non-finite chunk")
        records += _run(step, sampler, clock, range(12, 40))
    finally:
        _close(step, clock)
    _assert_never_stale(records)
    failed = [k for k, r in enumerate(records) if r.policy_error.startswith("policy failed")]
    assert len(failed) == 1 and step.policy_errors == 1 and records[failed[0]].safety_held
    assert "non-finite chunk" in records[failed[0]].policy_error
    # holds until a fresh chunk arrives (planned from the failure tick, 3 periods), counted as a restart, not late
    k = failed[0]
    assert all(r.policy_error.startswith("planning the first chunk") for r in records[k + 1 : k + 3])
    assert all(np.isfinite(r.policy_action).all() for r in records[k + 3 :])
    assert step.chunk_stats().missed_actions == 0


def test_an_unexpected_sampler_exception_reaches_the_tick_like_a_synchronous_one() -> None:
    clock = SimClock()
    sampler = SlowSampler(clock, latency_s=0.0)
    sampler.fail_next = TypeError("a bug, not a bad input")
    step = _async_step(sampler)
    try:
        _run(step, sampler, clock, range(1))  # submitted, failed on the worker
        with pytest.raises(TypeError, match="a bug"):
            _run(step, sampler, clock, range(1, 2))
    finally:
        _close(step, clock)


def test_reset_drops_the_plan_in_flight() -> None:
    clock = SimClock()
    sampler = SlowSampler(clock, latency_s=2.5 * PERIOD)
    step = _async_step(sampler)
    try:
        records = _run(step, sampler, clock, range(2))  # plan from tick 0 in flight
        step.reset()  # a new episode: that chunk must never run
        records += _run(step, sampler, clock, range(2, 9))
    finally:
        _close(step, clock)
    _assert_never_stale(records)
    # The dropped plan finishes at 2.5 periods (seen at tick 3); the new one, asked for at tick 2, waits behind it
    # and takes 2.5 periods from tick 3: it arrives at tick 6, at its element 4 (planned from tick 2, not tick 0).
    finite = [k for k, r in enumerate(records) if np.isfinite(r.policy_action).all()]
    assert finite[0] == 6 and records[6].chunk_step == 4 and records[6].chunk_index == 0
    assert step.chunk_stats().plans == 1 and step.chunk_stats().missed_actions == 0


def test_a_real_sleeping_sampler_never_delays_the_tick() -> None:
    """Real time, real thread: the sampler sleeps 1.5 periods, the tick loop keeps its deadlines."""
    period = 0.04

    class Sleeper:
        chunk_size = H
        execution_horizon = H

        def plan(self, history: np.ndarray) -> np.ndarray:
            time.sleep(1.5 * period)
            return SCALE * (float(history[-1]) + np.arange(H, dtype=np.float64))[:, None]

    step = make_step(Sleeper(), execution=ChunkExecutionConfig(async_inference=True), period_s=period)
    records, tick_s = [], []
    start = time.monotonic()
    try:
        for k in range(40):
            delay = start + k * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            feed(step, k, period)
            t0 = time.perf_counter()
            # The tick is labelled with its deadline, as a timer-driven node's would be.
            records.append(step.tick(k * period))
            tick_s.append(time.perf_counter() - t0)
    finally:
        step.close()
    assert max(tick_s) < period  # a plan on the tick would take 1.5 periods
    for k, rec in enumerate(records):
        if np.isfinite(rec.policy_action).all():
            assert rec.policy_action[0] == pytest.approx(SCALE * k, rel=1e-12) and rec.chunk_step < H
    stats = step.chunk_stats()
    assert stats.async_plans >= 5 and stats.last_plan_latency_s >= 1.5 * period
    assert stats.missed_actions == 0


def test_a_takeover_drops_the_chunks_and_the_policy_replans_after_it() -> None:
    clock = SimClock()
    sampler = SlowSampler(clock, latency_s=2.5 * PERIOD)
    step = _async_step(sampler)
    records = []
    try:
        for k in range(24):
            clock.set(k * PERIOD)
            _settle(step, sampler, clock)
            feed(step, k)
            engaged = 10 <= k < 13
            human = HumanInput(engaged, np.zeros(1) if engaged else None, k * PERIOD if engaged else None)
            records.append(step.tick(k * PERIOD, human))
            _settle(step, sampler, clock)
    finally:
        _close(step, clock)
    _assert_never_stale(records)
    assert all(r.source == "human" for r in records[10:13])
    # back at tick 13: nothing planned before the takeover runs; the fresh chunk (from tick 13) arrives at 16
    assert [np.isfinite(r.policy_action).all() for r in records[13:17]] == [False, False, False, True]
    assert records[16].chunk_step == 3 and step.chunk_stats().missed_actions == 0
