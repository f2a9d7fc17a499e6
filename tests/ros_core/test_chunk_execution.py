"""Chunk execution in the deployed control step, planned on the tick: observation history, temporal ensembling,
the safety chain on every element, the node's configuration and its `/diagnostics` entry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from robot_rl.safety.diagnostics import ERROR, OK, WARN
from ros_nodes.core.chunk_executor import ChunkExecutionConfig, ChunkStats, ensemble_average
from ros_nodes.core.control_step import ControlStep, HumanInput, OnnxChunkPolicy
from ros_nodes.core.deployment import PolicyNodeConfig, build_deployment
from ros_nodes.core.node_health import NodeHealth, policy_entry
from ros_nodes.core.node_watchdog import WatchdogStatus
from ros_nodes.core.obs_history import ObservationHistory
from tests.ros_core.chunk_rig import LAYOUT, PERIOD, VEL_LIMIT, feed, make_step


def _step(policy: object, *, execution: ChunkExecutionConfig | None = None, replan_every: int = 0) -> ControlStep:
    return make_step(policy, execution=execution, replan_every=replan_every)


_feed = feed


class _Recorder:
    """Chunk j (the j-th call) is `[[10 j + i] for i < H]`; every history it was given is kept."""

    def __init__(self, chunk_size: int, obs_history: int = 1) -> None:
        self.chunk_size = chunk_size
        self.obs_history = obs_history
        self.histories: list[np.ndarray] = []

    def plan(self, history: np.ndarray) -> np.ndarray:
        j = len(self.histories)
        self.histories.append(history.copy())
        return (10.0 * j + np.arange(self.chunk_size, dtype=np.float64))[:, None]


# ------------------------------------------------------------------------------------------ observation history
def test_history_repeats_the_first_observation_and_restarts_on_reset() -> None:
    policy = _Recorder(chunk_size=1, obs_history=3)
    step = _step(policy)
    for k in range(4):
        _feed(step, k)
        step.tick(k * PERIOD)
    step.reset()
    _feed(step, 4)
    step.tick(4 * PERIOD)
    ticks = [h[1::2].tolist() for h in policy.histories]  # the "tick" entry of each of the T_o observations
    assert ticks == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3], [4, 4, 4]]
    assert all(h.shape == (3 * LAYOUT.dim,) and h.dtype == np.float32 for h in policy.histories)


class _Stateful(_Recorder):
    """A policy with state of its own between steps (a residual on a chunked base bundle): counts its resets."""

    def __init__(self) -> None:
        super().__init__(chunk_size=1)
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1


def test_every_episode_start_resets_a_policy_that_keeps_its_own_state() -> None:
    policy = _Stateful()
    step = _step(policy)  # make_step resets once: the first episode
    assert policy.resets == 1
    _feed(step, 0)
    step.tick(0.0)
    step.reset()
    assert policy.resets == 2
    _Recorder(chunk_size=1).plan(np.zeros(2, np.float32))  # a policy without reset() is still fine
    _step(_Recorder(chunk_size=1)).reset()


def test_after_a_robot_reset_the_policy_waits_for_observations_newer_than_episode_done() -> None:
    """The robot re-initializes on done and its sources arrive unordered: the joint state of the new episode can
    trigger a tick while the task observation held is still the old episode's. That mix must never be planned
    from: the tick holds (counted) until every source arrived after `episode_done`, then the history starts."""
    from ros_nodes.core.episode_session import EpisodeSession

    policy = _Recorder(chunk_size=1, obs_history=2)
    step = _step(policy)
    session = EpisodeSession(step, robot_resets_on_done=True)
    session.begin()
    for k in range(3):
        _feed(step, k)
        session.tick(k * PERIOD)
    done_s = 2.5 * PERIOD
    session.on_episode_done(done_s)
    # Tick 3: the new episode's joint state arrived after done, its task observation not yet (still tick 2's).
    assert step.assembler.update_joint_state(["j"], [0.0], [0.0], arrival_s=3 * PERIOD) is None
    held = session.tick(3 * PERIOD).record
    assert np.isnan(held.policy_action).all() and held.safety_held and "waiting for ['tick']" in held.policy_error
    assert step.assembler.episode_start_waits == 1 and len(policy.histories) == 3
    _feed(step, 4)
    assert not np.isnan(session.tick(4 * PERIOD).record.policy_action).any()
    assert policy.histories[3][1::2].tolist() == [4, 4]  # the new episode starts from its own observation only
    _feed(step, 5)
    session.tick(5 * PERIOD)
    assert policy.histories[4][1::2].tolist() == [4, 5] and step.assembler.episode_start_waits == 1


def test_the_previous_episodes_last_reading_arriving_after_done_is_not_taken_for_the_new_one() -> None:
    """`episode_done` and the robot's last joint state travel on separate topics: the reading can arrive after the
    done. Its header stamp (taken before the done) gives it away, so the first tick of the new episode waits for
    the re-initialized robot's reading instead of planning from where the old episode ended."""
    from ros_nodes.core.episode_session import EpisodeSession

    policy = _Recorder(chunk_size=1, obs_history=1)
    step = _step(policy)
    session = EpisodeSession(step, robot_resets_on_done=True)
    session.begin()
    asm = step.assembler
    for k in range(2):
        _feed(step, k)
        asm.update_joint_state(["j"], [float(k)], [0.0], arrival_s=k * PERIOD, header_stamp_s=k * PERIOD)
        session.tick(k * PERIOD)
    session.on_episode_done(2.2 * PERIOD)
    # The last step's reading (stamped at 2.0, before the done) and its task observation arrive after the done.
    assert asm.update_observation("tick", [2.0], arrival_s=2.3 * PERIOD) is None
    assert asm.update_joint_state(["j"], [2.0], [0.0], arrival_s=2.4 * PERIOD, header_stamp_s=2 * PERIOD) is None
    held = session.tick(2.5 * PERIOD).record
    assert held.safety_held and "waiting for ['joint_state']" in held.policy_error
    # The re-initialized robot's reading, stamped after the done, starts the episode.
    _feed(step, 3)
    assert asm.update_joint_state(["j"], [0.0], [0.0], arrival_s=3.1 * PERIOD, header_stamp_s=3 * PERIOD) is None
    assert not np.isnan(session.tick(3.2 * PERIOD).record.policy_action).any()
    assert asm.episode_start_waits == 1


def test_a_sensor_clock_behind_the_node_delays_the_episode_start_by_one_reading_only() -> None:
    from ros_nodes.core.episode_session import EpisodeSession

    step = _step(_Recorder(chunk_size=1, obs_history=1))
    session = EpisodeSession(step, robot_resets_on_done=True)
    session.begin()
    asm = step.assembler
    _feed(step, 0)
    asm.update_joint_state(["j"], [0.0], [0.0], arrival_s=0.0, header_stamp_s=-100.0)
    session.tick(0.0)
    session.on_episode_done(0.5 * PERIOD)
    for k in (1, 2):  # every stamp is 100 s behind the node clock: the second fresh reading is taken anyway
        _feed(step, k)
        asm.update_joint_state(["j"], [0.0], [0.0], arrival_s=k * PERIOD, header_stamp_s=k * PERIOD - 100.0)
    assert not np.isnan(session.tick(2 * PERIOD).record.policy_action).any()


def test_without_robot_resets_the_episode_start_does_not_wait() -> None:
    from ros_nodes.core.episode_session import EpisodeSession

    policy = _Recorder(chunk_size=1, obs_history=1)
    step = _step(policy)
    session = EpisodeSession(step, robot_resets_on_done=False)
    session.begin()
    _feed(step, 0)
    session.tick(0.0)
    session.on_episode_done(0.5 * PERIOD)
    assert step.assembler.update_joint_state(["j"], [0.0], [0.0], arrival_s=PERIOD) is None
    assert not np.isnan(session.tick(PERIOD).record.policy_action).any()
    assert step.assembler.episode_start_waits == 0


def test_history_keeps_advancing_while_a_human_drives() -> None:
    policy = _Recorder(chunk_size=1, obs_history=2)
    step = _step(policy)
    for k in range(5):
        _feed(step, k)
        engaged = k in (1, 2, 3)
        step.tick(k * PERIOD, HumanInput(engaged, np.zeros(1) if engaged else None, k * PERIOD if engaged else None))
    # queried at ticks 0 and 4 only; at 4 it sees the observation of tick 3 (taken while the human drove)
    assert [h[1::2].tolist() for h in policy.histories] == [[0, 0], [3, 4]]


def test_history_of_one_is_the_observation_itself() -> None:
    policy = _Recorder(chunk_size=1)
    step = _step(policy)
    _feed(step, 7)
    rec = step.tick(7 * PERIOD)
    np.testing.assert_array_equal(policy.histories[0], rec.observation)
    hist = ObservationHistory(1)
    obs = np.array([1.0, 2.0], np.float32)
    np.testing.assert_array_equal(hist.push(obs), obs)
    with pytest.raises(ValueError, match=">= 1"):
        ObservationHistory(0)
    with pytest.raises(ValueError, match="3 values"):
        hist.push(np.zeros(3, np.float32))


# ------------------------------------------------------------------------------------------ receding horizon
def test_receding_horizon_takes_the_policy_execution_horizon_and_records_chunks() -> None:
    policy = _Recorder(chunk_size=4)
    policy.execution_horizon = 3  # type: ignore[attr-defined]
    step = _step(policy)
    recs = []
    for k in range(7):
        _feed(step, k)
        recs.append(step.tick(k * PERIOD))
    assert [r.policy_action[0] for r in recs] == [0, 1, 2, 10, 11, 12, 20]
    assert [r.chunk_index for r in recs] == [0, 0, 0, 1, 1, 1, 2]
    assert [r.chunk_step for r in recs] == [0, 1, 2, 0, 1, 2, 0]
    assert [r.replanned for r in recs] == [True, False, False, True, False, False, True]
    assert step.chunk_stats().plans == 3 and not step.executor.asynchronous  # bare ControlStep: on the tick
    assert step.replan_every == 3 == step.executor.horizon


def test_no_element_past_the_chunk_end_is_reused() -> None:
    class Short(_Recorder):
        def plan(self, history: np.ndarray) -> np.ndarray:
            return super().plan(history)[:2]  # says chunk 4, returns 2

    step = _step(Short(chunk_size=4))
    values = []
    for k in range(5):
        _feed(step, k)
        values.append(step.tick(k * PERIOD).policy_action[0])
    assert values == [0, 1, 10, 11, 20]  # replans after its 2 elements instead of repeating the last one


# ------------------------------------------------------------------------------------------ temporal ensembling
def test_temporal_ensembling_averages_the_predictions_for_now_with_act_weights() -> None:
    m = 0.5
    step = _step(_Recorder(chunk_size=3), execution=ChunkExecutionConfig(mode="ensemble", ensemble_decay=m))
    recs = []
    for k in range(5):
        _feed(step, k)
        recs.append(step.tick(k * PERIOD))
    w1, w2 = math.exp(-m), math.exp(-2 * m)
    # chunk j predicts 10 j + i for step j + i; weights exp(-m i), i = 0 for the oldest prediction
    expected = [
        0.0,
        (1.0 + w1 * 10.0) / (1.0 + w1),
        (2.0 + w1 * 11.0 + w2 * 20.0) / (1.0 + w1 + w2),
        (12.0 + w1 * 21.0 + w2 * 30.0) / (1.0 + w1 + w2),
        (22.0 + w1 * 31.0 + w2 * 40.0) / (1.0 + w1 + w2),
    ]
    np.testing.assert_allclose([r.policy_action[0] for r in recs], expected, rtol=1e-12)
    assert all(r.replanned for r in recs) and [r.chunk_index for r in recs] == [0, 1, 2, 3, 4]
    assert all(r.chunk_step == 0 for r in recs)  # the newest contributing chunk is the one planned now
    np.testing.assert_allclose(ensemble_average(np.array([[1.0], [2.0], [6.0]]), 0.0), [3.0])  # m = 0: the mean


def test_ensembling_a_chunk_of_one_is_the_plain_policy() -> None:
    step = _step(_Recorder(chunk_size=1), execution=ChunkExecutionConfig(mode="ensemble"))
    values = []
    for k in range(3):
        _feed(step, k)
        values.append(step.tick(k * PERIOD).policy_action[0])
    assert values == [0.0, 10.0, 20.0]


# ------------------------------------------------------------------------------------------ safety on every element
class _Fixed:
    def __init__(self, chunk: list[float]) -> None:
        self.chunk = np.array(chunk)[:, None]
        self.chunk_size = len(chunk)

    def plan(self, history: np.ndarray) -> np.ndarray:
        return self.chunk


def test_every_element_of_a_chunk_goes_through_the_safety_chain() -> None:
    step = _step(_Fixed([0.1, 5.0, -0.2, -9.0]))
    recs = []
    for k in range(4):
        _feed(step, k)
        recs.append(step.tick(k * PERIOD))
    assert [r.policy_action[0] for r in recs] == [0.1, 5.0, -0.2, -9.0]
    np.testing.assert_allclose([r.executed_action[0] for r in recs], [0.1, VEL_LIMIT, -0.2, -VEL_LIMIT])
    assert [r.safety_changed_by for r in recs] == [(), ("velocity_limit",), (), ("velocity_limit",)]
    assert not any(r.safety_held for r in recs)


def test_a_chunk_with_nan_or_a_wrong_shape_holds_and_counts() -> None:
    step = _step(_Fixed([0.1, float("nan")]))
    _feed(step, 0)
    assert not step.tick(0.0).safety_held
    _feed(step, 1)
    rec = step.tick(PERIOD)
    assert rec.safety_held and "non_finite" in rec.safety_changed_by and np.isfinite(rec.executed_action).all()
    bad = _step(_Fixed([0.1, 0.2]))
    bad.policy.chunk = np.zeros((2, 3))  # type: ignore[attr-defined]  # three actions for a one-joint robot
    _feed(bad, 0)
    rec = bad.tick(0.0)
    assert rec.safety_held and "shape (2, 3)" in rec.policy_error and bad.policy_errors == 1


# ------------------------------------------------------------------------------------------ node configuration
def test_node_config_chunk_parameters_are_validated() -> None:
    cfg = PolicyNodeConfig.from_params({"chunk_execution": "ensemble", "ensemble_decay": 0.1, "plan_lead_steps": 2})
    ex = cfg.chunk_execution_config()
    assert ex.mode == "ensemble" and ex.ensemble_decay == 0.1 and ex.lead_steps == 2 and ex.async_inference
    with pytest.raises(ValueError, match="chunk execution mode"):
        PolicyNodeConfig(chunk_execution="sometimes")
    with pytest.raises(ValueError, match="ensemble_decay"):
        PolicyNodeConfig(ensemble_decay=-1.0)
    with pytest.raises(ValueError, match="plan_lead_steps"):
        PolicyNodeConfig(plan_lead_steps=-1)


def test_a_chunk_size_one_bundle_plans_on_the_tick_as_before(cartpole_lqr_bundle: Path) -> None:
    dep = build_deployment({"bundle_dir": str(cartpole_lqr_bundle)})  # async_inference defaults to true
    step = dep.step
    assert isinstance(step.policy, OnnxChunkPolicy) and step.policy.chunk_size == 1
    assert not step.executor.asynchronous and step.history.length == 1 and step.replan_every == 1
    step.reset()
    for k in range(3):
        t = k * PERIOD
        step.assembler.update_joint_state(["cart_to_pole", "slider_to_cart"], [0.05, 0.0], [0.0, 0.0], arrival_s=t)
        rec = step.tick(t)
        expected = dep.policy.act(rec.observation)
        assert rec.policy_action[0] == pytest.approx(float(expected[0]), abs=0)  # exactly the bundle's action
        assert rec.replanned and rec.chunk_index == k and rec.chunk_step == 0
    assert step.chunk_stats().plans == 3 and step.chunk_stats().async_plans == 0


# ------------------------------------------------------------------------------------------ diagnostics
def _stats(**kw: object) -> ChunkStats:
    base: dict[str, object] = {
        "mode": "receding",
        "asynchronous": True,
        "chunk_size": 8,
        "horizon": 8,
        "obs_history": 2,
        "plans": 12,
        "async_plans": 12,
        "late_chunks": 0,
        "stale_chunks": 0,
        "missed_actions": 0,
        "overrun_steps": 0,
        "late_now": False,
        "last_plan_latency_s": 0.05,
        "lead_steps": 4,
    }
    base.update(kw)
    return ChunkStats(**base)  # type: ignore[arg-type]


def _health(chunks: ChunkStats | None) -> NodeHealth:
    return NodeHealth(True, {}, "", "", {}, 0, "", False, WatchdogStatus(True, 0.0, 0.0, False, False, 0), chunks)


def test_chunk_counters_reach_the_policy_diagnostics_entry() -> None:
    ok = policy_entry(_health(_stats()))
    assert ok.level == OK and "12 chunks planned (receding async, last plan 50 ms)" in ok.message
    assert ok.values["chunk/async_plans"] == "12" and ok.values["chunk/last_plan_latency_ms"] == "50.000"
    assert ok.values["chunk/missed_actions"] == "0" and ok.values["chunk/lead_steps"] == "4"
    warn = policy_entry(_health(_stats(missed_actions=3, late_chunks=1)))
    assert warn.level == WARN and "3 actions missed waiting for 1 late chunks" in warn.message
    error = policy_entry(_health(_stats(missed_actions=5, late_chunks=1, late_now=True)))
    assert error.level == ERROR and error.message.startswith("holding: the next chunk is late")
    plain = policy_entry(_health(None))
    assert plain.level == OK and plain.message == "no failed calls" and "chunk/plans" not in plain.values
    assert _stats(last_plan_latency_s=math.nan).to_json()["last_plan_latency_s"] is None


# ------------------------------------------------------------------------------------------ recording
def test_chunk_boundaries_reach_the_recording(tmp_path: Path) -> None:
    from robot_rl.data.episode_record import CHUNK_LABEL, STEP_TOPIC, RecorderConfig, decode_step
    from robot_rl.data.mcap_reader import list_episodes, read_episode, scan_records
    from robot_rl.data.mcap_writer import EpisodeRecorder

    step = _step(_Recorder(chunk_size=3))
    records = []
    for k in range(5):
        _feed(step, k)
        records.append(step.tick(k * PERIOD))
    recorder = EpisodeRecorder(RecorderConfig(directory=tmp_path))
    recorder.start_episode({"robot": "rig"})
    for rec in records:
        assert recorder.record_step(rec)
    recorder.end_episode(terminated=False, truncated=True)
    recorder.close()
    (path,) = list_episodes(tmp_path)
    scan = scan_records(path.read_bytes())
    decoded = [decode_step(m.data) for m in scan.messages if scan.topic_of(m.channel_id) == STEP_TOPIC]
    # [chunk_index, chunk_step, replanned] per step
    chunks = [d.extra[CHUNK_LABEL].tolist() for d in decoded]
    assert chunks == [[0, 0, 1], [0, 1, 0], [0, 2, 0], [1, 0, 1], [1, 1, 0]]
    assert len(read_episode(path).steps) == 5  # readers that do not know the segment still read the episode


def test_a_replaced_policy_plans_from_the_next_tick_and_must_match_the_shape() -> None:
    step = _step(_Recorder(chunk_size=3))
    _feed(step, 0)
    assert step.tick(0.0).policy_action[0] == 0.0
    step.policy = _Fixed([7.0, 8.0, 9.0])  # the chunk of the old policy is dropped
    _feed(step, 1)
    assert step.tick(PERIOD).policy_action[0] == 7.0
    with pytest.raises(ValueError, match="chunk_size, obs_history"):
        step.policy = _Fixed([1.0])
