"""Round trips of the per-episode MCAP recorder: exact data, intervention labels (D3), drops, rosbags/mcap interop."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from rosbags.highlevel import AnyReader

from robot_rl.data.datasets.sources.mcap import recording_episodes
from robot_rl.data.episode_record import (
    EPISODE_METADATA,
    SAFETY_MSGTYPE,
    SAFETY_TOPIC,
    STEP_MSGTYPE,
    STEP_TOPIC,
    RecorderConfig,
    Recording,
    StepRecord,
    decode_step,
    typestore,
)
from robot_rl.data.mcap_reader import list_episodes, read_episode
from robot_rl.data.mcap_writer import EpisodeRecorder

REASONS = [(), ("clip/joint_limit",), ("clip/joint_limit", "rate_limit"), ("nan_guard",)]


def make_steps(seed: int, n: int, obs_dim: int = 5, act_dim: int = 3, *, terminated: bool = False) -> list[StepRecord]:
    """Random steps: NaN in policy actions, toggling intervention, changing safety reasons, 0..n-1 indices."""
    rng = np.random.default_rng(seed)
    steps = []
    for t in range(n):
        policy = rng.normal(size=act_dim)
        if rng.random() < 0.1:
            policy[rng.integers(act_dim)] = np.nan
        steps.append(
            StepRecord(
                step=t,
                stamp_ns=1_700_000_000_000_000_000 + t * 5_000_000,
                observation=rng.normal(size=obs_dim),
                policy_action=policy,
                executed_action=np.clip(np.nan_to_num(policy), -0.5, 0.5),
                reward_terms={"rlif": -float(rng.random() < 0.2), "success": float(rng.normal())},
                intervention=bool(rng.random() < 0.3),
                safety_reasons=REASONS[int(rng.integers(len(REASONS)))] if rng.random() < 0.2 else (),
                terminated=terminated and t == n - 1,
                truncated=not terminated and t == n - 1,
            )
        )
    return steps


def assert_episode_equals(episode: Recording, steps: list[StepRecord]) -> None:
    """Every field read back equals what was recorded (NaN compares equal)."""
    assert len(episode) == len(steps)
    if not steps:
        assert episode.observations.shape[0] == 0 and episode.safety_reasons == []
        return
    np.testing.assert_array_equal(episode.steps, [s.step for s in steps])
    np.testing.assert_array_equal(episode.stamps_ns, [s.stamp_ns for s in steps])
    np.testing.assert_array_equal(episode.observations, np.array([s.observation for s in steps]))
    np.testing.assert_array_equal(episode.policy_actions, np.array([s.policy_action for s in steps]))
    np.testing.assert_array_equal(episode.executed_actions, np.array([s.executed_action for s in steps]))
    for term in ("rlif", "success"):
        np.testing.assert_array_equal(episode.rewards[term], [s.reward_terms[term] for s in steps])
    np.testing.assert_array_equal(episode.intervention, [s.intervention for s in steps])
    np.testing.assert_array_equal(episode.terminated, [s.terminated for s in steps])
    np.testing.assert_array_equal(episode.truncated, [s.truncated for s in steps])
    assert episode.safety_reasons == [s.safety_reasons for s in steps]


def record(directory: Path, episodes: list[list[StepRecord]], **config: object) -> list[Path]:
    """Record `episodes` and return their final paths."""
    paths = []
    with EpisodeRecorder(RecorderConfig(directory=directory, **config)) as rec:  # type: ignore[arg-type]
        for i, steps in enumerate(episodes):
            rec.start_episode({"policy_sha256": "ab" * 32, "robot": "sim_arm", "operator": "ci", "env_id": str(i)})
            for s in steps:
                assert rec.record_step(s)
            last = steps[-1] if steps else None
            paths.append(
                rec.end_episode(
                    terminated=bool(last and last.terminated),
                    truncated=bool(last and last.truncated),
                    extra={"success": "false"},
                )
            )
        stats = rec.stats()
    assert stats["dropped"] == 0 and stats["episodes"] == len(episodes)
    assert stats["written"] == sum(len(s) for s in episodes)
    return paths


def test_round_trip_several_episodes_exact(tmp_path: Path) -> None:
    episodes = [make_steps(seed, n, terminated=seed % 2 == 0) for seed, n in enumerate([1, 37, 250, 0, 120])]
    paths = record(tmp_path, episodes)
    assert list_episodes(tmp_path) == paths
    assert [p.name for p in paths] == [f"episode_{i:06d}.mcap" for i in range(len(episodes))]
    assert not list(tmp_path.glob("*.partial"))
    for i, (path, steps) in enumerate(zip(paths, episodes, strict=True)):
        episode = read_episode(path)
        assert_episode_equals(episode, steps)
        assert episode.metadata["robot"] == "sim_arm" and episode.metadata["env_id"] == str(i)
        assert episode.metadata["episode_index"] == str(i)
        assert episode.metadata["steps"] == str(len(steps)) and episode.metadata["dropped"] == "0"
        assert episode.metadata["success"] == "false"
        assert not episode.recovered


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_compressed_round_trip(tmp_path: Path, compression: str) -> None:
    pytest.importorskip({"zstd": "zstandard", "lz4": "lz4"}[compression])
    steps = make_steps(7, 300)
    (path,) = record(tmp_path, [steps], compression=compression)
    assert_episode_equals(read_episode(path), steps)


def test_intervention_labels_equal_ground_truth_over_long_run(tmp_path: Path) -> None:
    """D3: 5,000 scripted steps with random on/off runs; every recorded flag equals the ground truth."""
    rng = np.random.default_rng(3)
    truth = np.zeros(5000, dtype=bool)
    t, on = 0, False
    while t < truth.size:
        run = int(rng.integers(1, 60))
        truth[t : t + run] = on
        t, on = t + run, not on
    steps = [
        StepRecord(
            step=i,
            stamp_ns=i * 10_000_000,
            observation=np.array([float(i)]),
            policy_action=np.zeros(2),
            executed_action=np.full(2, float(flag)),
            reward_terms={"rlif": -1.0 if flag and not truth[i - 1] else 0.0},
            intervention=bool(flag),
        )
        for i, flag in enumerate(truth)
    ]
    # Split over two episodes so the label survives episode boundaries too.
    paths = record(tmp_path, [steps[:2600], steps[2600:]])
    flags = np.concatenate([read_episode(p).intervention for p in paths])
    assert flags.dtype == np.bool_
    np.testing.assert_array_equal(flags, truth)


def test_recording_to_episodes_terminal_truncated_and_gaps(tmp_path: Path) -> None:
    """A recording becomes training Episodes: the terminal last step is kept, a truncated one and gaps cut."""
    terminal = make_steps(1, 6, terminated=True)
    truncated = make_steps(2, 6)
    gapped = [s for s in make_steps(3, 8) if s.step != 4]  # step 4 "dropped" by the recorder
    p_term, p_trunc, p_gap = record(tmp_path, [terminal, truncated, gapped])

    rec = read_episode(p_term)
    (ep,) = recording_episodes(rec)
    assert len(ep) == 6 and ep.terminated and not ep.truncated  # the terminal step is kept
    np.testing.assert_array_equal(ep.observations[:-1], rec.observations.astype(np.float32))
    np.testing.assert_array_equal(ep.observations[-1], ep.observations[-2])  # next obs = obs: never bootstrapped
    np.testing.assert_array_equal(ep.actions, rec.executed_actions)
    np.testing.assert_array_equal(ep.policy_actions, rec.policy_actions)  # NaN kept as recorded
    np.testing.assert_allclose(ep.rewards, [sum(s.reward_terms.values()) for s in terminal])
    np.testing.assert_array_equal(ep.intervention, [s.intervention for s in terminal])
    np.testing.assert_array_equal(ep.safety_activated, [bool(r) for r in rec.safety_reasons])

    (ep,) = recording_episodes(read_episode(p_trunc))
    assert len(ep) == 5 and ep.truncated and not ep.terminated  # the truncated last step has no next observation
    np.testing.assert_array_equal(ep.observations[-1], np.float32(truncated[-1].observation))

    first, second = recording_episodes(read_episode(p_gap))
    # Steps 3 (its successor is missing) and 7 (last, truncated) have no true next observation.
    assert (len(first), len(second)) == (3, 2) and first.truncated and second.truncated
    np.testing.assert_array_equal(first.observations[-1], np.float32(gapped[3].observation))  # step 3 ends it
    np.testing.assert_array_equal(second.observations[0], np.float32(gapped[4].observation))  # step 5
    np.testing.assert_array_equal(second.observations[1], np.float32(gapped[5].observation))


def test_queue_full_drops_are_counted_and_record_step_never_blocks(tmp_path: Path) -> None:
    rec = EpisodeRecorder(RecorderConfig(directory=tmp_path, queue_size=4))
    rec.start_episode({"robot": "stalled"})
    gate = threading.Event()
    original = rec._handle

    def stalled(item: tuple[object, ...]) -> None:
        gate.wait()
        original(item)

    rec._handle = stalled  # type: ignore[method-assign]
    steps = make_steps(5, 200)
    accepted: list[bool] = []
    producer = threading.Thread(target=lambda: accepted.extend(rec.record_step(s) for s in steps))
    producer.start()
    producer.join(timeout=60)
    assert not producer.is_alive(), "record_step blocked while the writer was stalled"
    stats = rec.stats()
    assert sum(accepted) <= 5  # the queue (4) plus at most the one item the stalled writer holds
    assert stats["dropped"] == accepted.count(False) > 0
    gate.set()
    path = rec.end_episode(terminated=False, truncated=True)
    rec.close()
    episode = read_episode(path)
    kept = [s for s, ok in zip(steps, accepted, strict=True) if ok]
    np.testing.assert_array_equal(episode.steps, [s.step for s in kept])
    assert episode.metadata["dropped"] == str(accepted.count(False))


def test_rejects_without_episode_and_on_shape_change(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flush_period_s"):
        EpisodeRecorder(RecorderConfig(directory=tmp_path, flush_period_s=2.0))
    with pytest.raises(ValueError, match="compression"):
        EpisodeRecorder(RecorderConfig(directory=tmp_path, compression="gzip"))
    rec = EpisodeRecorder(RecorderConfig(directory=tmp_path))
    steps = make_steps(9, 4)
    assert not rec.record_step(steps[0])  # no episode open
    assert not rec.record_raw("/joint_states", "sensor_msgs/msg/JointState", b"", 0)
    with pytest.raises(ValueError, match="str"):
        rec.start_episode({"robot": 3})  # type: ignore[dict-item]
    rec.start_episode({})
    with pytest.raises(RuntimeError, match="still open"):
        rec.start_episode({})
    assert rec.record_step(steps[0])
    wide = StepRecord(1, 1, np.zeros(9), np.zeros(3), np.zeros(3), {}, False)
    assert rec.record_step(wide)  # queued, then rejected by the writer: the episode must stay stackable
    assert not rec.record_raw("/robot_rl/step", STEP_MSGTYPE, b"", 0)  # our own topics are reserved
    assert not rec.record_raw("/x", "no_pkg/msg/Unknown", b"", 0)
    # Malformed input never raises into the control tick.
    assert not rec.record_step(StepRecord(2, 1, "abc", np.zeros(3), np.zeros(3), {}, False))  # type: ignore[arg-type]
    assert not rec.record_step(StepRecord(2, -1, np.zeros(5), np.zeros(3), np.zeros(3), {}, False))
    assert not rec.record_step(StepRecord(2, 1, np.zeros(5), np.zeros(3), np.zeros(3), {"r": "x"}, False))  # type: ignore[dict-item]
    assert not rec.record_raw("/x", "sensor_msgs/msg/JointState", None, 0)  # type: ignore[arg-type]
    path = rec.end_episode(terminated=False, truncated=True)
    assert rec.stats()["rejected"] >= 9
    rec.close()
    assert len(read_episode(path)) == 1


def test_close_ends_open_episode_as_truncated(tmp_path: Path) -> None:
    rec = EpisodeRecorder(RecorderConfig(directory=tmp_path))
    path = rec.start_episode({"operator": "a"})
    for s in make_steps(4, 10):
        rec.record_step(s)
    rec.close()
    rec.close()
    episode = read_episode(path)
    assert len(episode) == 10
    assert episode.metadata["truncated"] == "true" and episode.metadata["terminated"] == "false"
    # A new recorder in the same folder continues the numbering.
    with EpisodeRecorder(RecorderConfig(directory=tmp_path)) as rec2:
        assert rec2.start_episode({}).name == "episode_000001.mcap"


def test_rosbags_anyreader_and_mcap_reader_open_files(tmp_path: Path) -> None:
    steps = make_steps(11, 80)
    store = typestore()
    types = store.types
    joint_state = types["sensor_msgs/msg/JointState"](
        header=types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=1, nanosec=2), frame_id=""),
        name=["j1", "j2"],
        position=np.array([0.1, 0.2]),
        velocity=np.array([0.0, 0.0]),
        effort=np.array([], dtype=np.float64),
    )
    raw = bytes(store.serialize_cdr(joint_state, "sensor_msgs/msg/JointState"))
    qos = "- history: keep_last\n  depth: 5\n  reliability: best_effort\n  durability: volatile\n"
    with EpisodeRecorder(RecorderConfig(directory=tmp_path)) as rec:
        path = rec.start_episode({"robot": "arm"})
        for s in steps:
            rec.record_step(s)
            assert rec.record_raw("/joint_states", "sensor_msgs/msg/JointState", raw, s.stamp_ns + 1, qos)
        rec.end_episode(terminated=False, truncated=True)

    with AnyReader([path]) as reader:
        topics = reader.topics
        assert topics[STEP_TOPIC].msgtype == STEP_MSGTYPE and topics[STEP_TOPIC].msgcount == len(steps)
        assert topics[SAFETY_TOPIC].msgtype == SAFETY_MSGTYPE
        assert topics["/joint_states"].msgcount == len(steps)
        qos_by_topic = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}  # type: ignore[union-attr]
        assert qos_by_topic["/joint_states"][0].depth == 5
        assert qos_by_topic[STEP_TOPIC][0].depth == 10
        observations = []
        for connection, _stamp, data in reader.messages(connections=list(reader.connections)):
            msg = reader.deserialize(data, connection.msgtype)
            if connection.topic == STEP_TOPIC:
                labels = [d.label for d in msg.layout.dim]  # type: ignore[attr-defined]
                assert labels[:3] == ["observation", "policy_action", "executed_action"]
                assert "reward/rlif" in labels and "intervention" in labels
                offset = 0
                for d in msg.layout.dim:  # type: ignore[attr-defined]
                    if d.label == "observation":
                        observations.append(msg.data[offset : offset + d.size])  # type: ignore[attr-defined]
                    offset += d.size
            elif connection.topic == "/joint_states":
                assert list(msg.name) == ["j1", "j2"]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(np.array(observations), np.array([s.observation for s in steps]))

    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics.message_count >= 2 * len(steps)
        assert reader.get_header().profile == "ros2"
        schemas = {s.name: s for s in summary.schemas.values()}
        assert schemas[STEP_MSGTYPE].encoding == "ros2msg"
        assert b"MSG: std_msgs/MultiArrayDimension" in schemas[STEP_MSGTYPE].data
        assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
        assert "offered_qos_profiles" in next(iter(summary.channels.values())).metadata
        names = [m.name for m in reader.iter_metadata()]
        assert names[0] == EPISODE_METADATA and "robot_rl/episode_end" in names
        decoded = [decode_step(m.data) for _, c, m in reader.iter_messages(topics=[STEP_TOPIC])]
    np.testing.assert_array_equal([d.intervention for d in decoded], [s.intervention for s in steps])


def test_read_episode_refuses_partial_with_hint(tmp_path: Path) -> None:
    partial = tmp_path / "episode_000000.mcap.partial"
    partial.write_bytes(b"\x89MCAP0\r\n")
    with pytest.raises(ValueError, match="recover"):
        read_episode(partial)
    bogus = tmp_path / "episode_000001.mcap"
    bogus.write_bytes(b"not an mcap file at all")
    with pytest.raises(ValueError, match="truncated or corrupted"):
        read_episode(bogus)
