"""Crash safety of episode recording: kill -9 (D1), truncation and corruption fuzz (D2), idempotent recovery."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from mcap.data_stream import ReadDataStream
from mcap.records import Channel, Chunk, Message
from mcap.stream_reader import breakup_chunk
from rosbags.highlevel import AnyReader

from robot_rl.data.episode_record import STEP_TOPIC, RecorderConfig, StepRecord
from robot_rl.data.mcap_reader import list_episodes, read_episode, scan_records
from robot_rl.data.mcap_recover import recover
from robot_rl.data.mcap_writer import EpisodeRecorder

REPO = Path(__file__).resolve().parents[2]
STEPS_PER_S = 200

# Shared by the child process and the test, so the test knows every value the child recorded.
EXPECTED_SRC = """
import numpy as np
from robot_rl.data.episode_record import StepRecord

def episode_length(ep):
    return 120 + (37 * ep) % 100

def expected_step(ep, t):
    n = episode_length(ep)
    return StepRecord(
        step=t,
        stamp_ns=ep * 10**12 + t * 5_000_000,
        observation=np.array([ep, t, np.sin(t)], dtype=np.float64),
        policy_action=np.array([t * 0.5, np.nan if t % 11 == 0 else -1.0]),
        executed_action=np.array([t * 0.25, 0.0]),
        reward_terms={"rlif": -1.0 if t % 13 == 0 else 0.0},
        intervention=(t // 17) % 2 == 1,
        safety_reasons=("clip",) if t % 29 < 3 else (),
        terminated=t == n - 1 and ep % 2 == 0,
        truncated=t == n - 1 and ep % 2 == 1,
    )
"""
_ns: dict[str, object] = {}
exec(EXPECTED_SRC, _ns)
episode_length = _ns["episode_length"]
expected_step = _ns["expected_step"]

CHILD_SRC = (
    EXPECTED_SRC
    + f"\nSTEPS_PER_S = {STEPS_PER_S}\n"
    + """
import sys, time
from pathlib import Path
from robot_rl.data.episode_record import RecorderConfig
from robot_rl.data.mcap_writer import EpisodeRecorder

directory, first_ep = Path(sys.argv[1]), int(sys.argv[2])
rec = EpisodeRecorder(RecorderConfig(directory=directory, flush_period_s=0.2))
ep = first_ep
while True:
    path = rec.start_episode({"episode": str(ep)})
    print("start", ep, path, flush=True)
    n = episode_length(ep)
    next_t = time.monotonic()
    for t in range(n):
        s = expected_step(ep, t)
        if rec.record_step(s):
            print("step", t, flush=True)
        next_t += 1.0 / STEPS_PER_S
        time.sleep(max(0.0, next_t - time.monotonic()))
    last = expected_step(ep, n - 1)
    rec.end_episode(terminated=last.terminated, truncated=last.truncated)
    print("done", ep, path, flush=True)
    ep += 1
"""
)


def assert_prefix(episode_steps: np.ndarray, episode: object, ep: int) -> None:
    """The recovered/finished episode holds exactly steps 0..k-1 of episode `ep`, with their exact values."""
    from robot_rl.data.episode_record import Recording

    assert isinstance(episode, Recording)
    k = len(episode)
    np.testing.assert_array_equal(episode_steps, np.arange(k))
    if k == 0:
        return
    expected = [expected_step(ep, t) for t in range(k)]  # type: ignore[operator]
    np.testing.assert_array_equal(episode.observations.reshape(k, -1), np.array([s.observation for s in expected]))
    np.testing.assert_array_equal(episode.policy_actions.reshape(k, -1), np.array([s.policy_action for s in expected]))
    np.testing.assert_array_equal(episode.intervention, [s.intervention for s in expected])
    assert episode.safety_reasons == [s.safety_reasons for s in expected]


def run_and_kill(directory: Path, first_ep: int, delay_s: float) -> list[list[str]]:
    """Start a recording child, SIGKILL it `delay_s` after its first recorded step, return its output lines."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD_SRC, str(directory), str(first_ep)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    lines: list[list[str]] = []
    first_step = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.endswith("\n"):
                break  # the kill cut this line short (e.g. "step" without its number): not a report
            lines.append(line.split())
            if line.startswith("step"):
                first_step.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    started = first_step.wait(timeout=120)
    if started:
        time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(timeout=30)
    assert started, f"child never recorded a step: {lines}"
    return lines


def test_kill_9_loses_at_most_one_second_and_recovery_is_idempotent(tmp_path: Path) -> None:
    """D1: kill -9 at random times; finished episodes read fully, the open one loses <= 1 s after recovery."""
    rng = np.random.default_rng(2024)
    first_ep = 0
    for delay_s in rng.uniform(0.2, 2.5, size=3):
        lines = run_and_kill(tmp_path, first_ep, float(delay_s))
        starts = [(int(w[1]), Path(w[2])) for w in lines if w[0] == "start"]
        done = {int(w[1]) for w in lines if w[0] == "done"}
        for ep, path in starts:
            if ep in done:
                episode = read_episode(path)
                assert len(episode) == episode_length(ep)  # type: ignore[operator]
                assert_prefix(episode.steps, episode, ep)
                assert not episode.recovered
        open_ep, open_path = starts[-1]
        if open_ep not in done:
            # Steps printed after the last "start" belong to the open episode.
            after = lines[max(i for i, w in enumerate(lines) if w[0] == "start") :]
            last_step = max((int(w[1]) for w in after if w[0] == "step"), default=-1)
            recovered = recover(open_path.with_name(open_path.name + ".partial"))
            assert recovered == open_path
            episode = read_episode(recovered)
            assert_prefix(episode.steps, episode, open_ep)
            assert len(episode) - 1 >= last_step - STEPS_PER_S, (len(episode), last_step)
            with AnyReader([recovered]) as bag:  # the rebuilt file is still a ROS 2 bag
                # (channels travel inside the first chunk, so an episode cut before it has no topics at all)
                assert sum(c.msgcount for c in bag.connections if c.topic == STEP_TOPIC) == len(episode)
            before = recovered.read_bytes()
            assert recover(recovered) == recovered  # idempotent: a valid file is returned untouched
            assert recover(open_path.with_name(open_path.name + ".partial")) == recovered
            assert recovered.read_bytes() == before
        # A partial the child created but never announced (killed inside start_episode) must not crash recovery.
        for partial in tmp_path.glob("*.partial"):
            try:
                recover(partial)
            except ValueError:
                partial.unlink()
        first_ep = open_ep + 1
    assert not list(tmp_path.glob("*.partial"))
    names = [p.name for p in list_episodes(tmp_path)]
    assert names == sorted(set(names)) and len(names) >= 3  # new children never reused an index


def record_chunked(directory: Path, n: int = 300) -> tuple[Path, list[StepRecord]]:
    """Record one episode slowly enough with a tiny flush period that it spans many chunks."""
    steps = [expected_step(1, t) for t in range(n)]  # type: ignore[operator]
    with EpisodeRecorder(RecorderConfig(directory=directory, flush_period_s=0.01)) as rec:
        path = rec.start_episode({"robot": "fuzz"})
        for s in steps:
            rec.record_step(s)
            time.sleep(0.001)
        rec.end_episode(terminated=False, truncated=True)
    return path, steps


def chunk_map(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """Independent walk of the file: (end of the start metadata, [(chunk end offset, step messages in it)])."""
    pos, meta_end = 8, 0
    chunks: list[tuple[int, int]] = []
    topics: dict[int, str] = {}
    while pos + 9 <= len(data):
        opcode, length = struct.unpack_from("<BQ", data, pos)
        end = pos + 9 + length
        if opcode == 0x0C and not meta_end:  # the first Metadata record: robot_rl/episode
            meta_end = end
        elif opcode == 0x06:
            records = breakup_chunk(Chunk.read(ReadDataStream(BytesIO(data[pos + 9 : end]))))
            topics.update({r.id: r.topic for r in records if isinstance(r, Channel)})
            steps = sum(1 for r in records if isinstance(r, Message) and topics[r.channel_id] == STEP_TOPIC)
            chunks.append((end, steps))
        elif opcode == 0x0F:  # DataEnd: the summary follows
            break
        pos = end
    return meta_end, chunks


@pytest.mark.parametrize("suffix", [".mcap", ".mcap.partial"])
def test_truncation_fuzz_reader_never_crashes_and_recovery_is_a_full_prefix(tmp_path: Path, suffix: str) -> None:
    """D2: truncate at ~30 random offsets; only ValueError escapes, recovery keeps every complete chunk."""
    source, steps = record_chunked(tmp_path / "src")
    data = source.read_bytes()
    meta_end, chunks = chunk_map(data)
    assert len(chunks) >= 2 and sum(c for _, c in chunks) == len(steps)
    rng = np.random.default_rng(7 if suffix == ".mcap" else 8)
    offsets = sorted({0, 5, 8, meta_end - 1, meta_end, chunks[0][0], len(data) - 1, *rng.integers(0, len(data), 30)})
    for i, offset in enumerate(offsets):
        work = tmp_path / f"cut{i}"
        work.mkdir()
        cut = work / f"episode_000000{suffix}"
        cut.write_bytes(data[:offset])
        with pytest.raises(ValueError):
            read_episode(cut)
        try:
            recovered = recover(cut)
        except ValueError:
            assert offset < meta_end, f"offset {offset}: recoverable data was refused"
            continue
        episode = read_episode(recovered)
        assert episode.recovered and episode.metadata["recovered"] == "true"
        assert episode.metadata["robot"] == "fuzz"
        assert_prefix(episode.steps, episode, 1)
        complete = sum(n for end, n in chunks if end <= offset)
        assert len(episode) == complete, f"offset {offset}: kept {len(episode)} of {complete} complete steps"
        assert not (work / "episode_000000.mcap.partial").exists()
        before = recovered.read_bytes()
        assert recover(cut) == recovered and recovered.read_bytes() == before
        if suffix == ".mcap":
            assert (work / "episode_000000.mcap.damaged").read_bytes() == data[:offset]
        shutil.rmtree(work)


def check_corrupted(path: Path, steps: list[StepRecord]) -> tuple[bool, bool]:
    """What must hold for a file with flipped bytes: reading and recovering either refuse with ValueError or give
    back recorded steps with their exact values — never a flipped value, never anything but ValueError — and what
    `recover` returns reads back. Returns (read_episode accepted it, recover produced a file)."""
    try:
        episode = read_episode(path)
    except ValueError:
        read_ok = False
    else:
        read_ok = True
        assert_prefix(episode.steps, episode, 1)
        assert len(episode) == len(steps)  # a file read as finished holds every step, or it is refused
    try:
        recovered = recover(path)
    except ValueError:
        return read_ok, False
    episode = read_episode(recovered)
    assert_prefix(episode.steps, episode, 1)  # the steps kept are an exact prefix of what was recorded
    assert len(episode) == len(steps) or episode.recovered
    return read_ok, True


def test_corruption_fuzz_never_gives_back_a_flipped_value(tmp_path: Path) -> None:
    """Flipped bytes anywhere: only ValueError escapes, and whatever is read or recovered is exactly what was
    recorded (every chunk carries a CRC; a damaged one is dropped whole, never passed through)."""
    source, steps = record_chunked(tmp_path / "src", n=120)
    data = source.read_bytes()
    _, chunks = chunk_map(data)
    rng = np.random.default_rng(11)
    outcomes = {"read": 0, "refused": 0, "recovered": 0}
    for i in range(30):
        damaged = bytearray(data)
        # Half of the cases flip a byte inside a chunk (message data), the rest anywhere in the file.
        lo = chunks[0][0] - 64 if i % 2 else 0
        for pos in rng.integers(max(lo, 0), len(data), size=int(rng.integers(1, 4))):
            damaged[pos] ^= int(rng.integers(1, 256))
        work = tmp_path / f"flip{i}"
        work.mkdir()
        path = work / "episode_000000.mcap"
        path.write_bytes(bytes(damaged))
        read_ok, recovered = check_corrupted(path, steps)
        outcomes["read" if read_ok else "refused"] += 1
        outcomes["recovered"] += recovered
    # The fuzz reached both sides: damage that is refused and files that still give (some of) their data back.
    assert outcomes["refused"] > 0 and outcomes["recovered"] > 0, outcomes


def test_the_corruption_check_catches_a_flipped_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzz test's check is not vacuous: a reader that passed a flipped observation through fails it."""
    import robot_rl.data.mcap_reader as reader_module

    source, steps = record_chunked(tmp_path / "src", n=40)
    real = reader_module.read_episode

    def flipping(path: Path) -> object:
        episode = real(path)
        episode.observations[3, 1] += 1.0  # what an unchecked bit flip in a message would look like
        return episode

    monkeypatch.setattr(sys.modules[__name__], "read_episode", flipping)
    with pytest.raises(AssertionError):
        check_corrupted(source, steps)


def test_recover_publishes_a_complete_partial_and_cleans_up_after_interrupted_recovery(tmp_path: Path) -> None:
    source, steps = record_chunked(tmp_path, n=50)
    data = source.read_bytes()
    # Crash after the footer was fsynced but before the rename: the partial is a whole file.
    partial = source.with_name(source.name + ".partial")
    os.replace(source, partial)
    assert recover(partial) == source and source.read_bytes() == data and not partial.exists()
    assert not read_episode(source).recovered
    # Crash in recover() between its rename and the unlink: the leftover partial is removed, the file kept.
    partial.write_bytes(data[: len(data) // 2])
    assert recover(partial) == source and not partial.exists()
    assert len(read_episode(source)) == len(steps)
    assert scan_records(source.read_bytes()).complete
    with pytest.raises(FileNotFoundError):
        recover(tmp_path / "episode_000099.mcap.partial")
