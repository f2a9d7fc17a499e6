"""Crash-safe per-episode MCAP recorder (ROS 2 profile, CDR messages, no rclpy).

The control tick only copies its arrays and does a `put_nowait` into a bounded queue; all file work happens in one
writer thread. Durability model (see docs/recording.md):

- one file per episode, written as `episode_<NNNNNN>.mcap.partial`;
- chunked MCAP, and the open chunk is closed, written, flushed and fsynced every `flush_period_s` (a chunk is the
  unit that survives a crash, so at most `flush_period_s` of data is only in memory);
- `end_episode` writes the summary/footer, fsyncs, reads the file back, renames it atomically to `.mcap` and fsyncs
  the directory. A crash leaves a `.partial` that `robot_rl.data.mcap_recover.recover` turns into a `.mcap`.
"""

from __future__ import annotations

import io
import os
import queue
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from mcap.writer import CompressionType, Writer

from robot_rl.data.episode_record import (
    DEFAULT_QOS_YAML,
    EPISODE_END_METADATA,
    EPISODE_METADATA,
    FORMAT_VERSION,
    MESSAGE_ENCODING,
    PROFILE,
    SAFETY_MSGTYPE,
    SAFETY_TOPIC,
    SCHEMA_ENCODING,
    STEP_MSGTYPE,
    STEP_TOPIC,
    RecorderConfig,
    StepRecord,
    encode_safety,
    encode_step,
    known_msgtype,
    normalize_qos_yaml,
    schema_text,
    type_hash,
)
from robot_rl.data.mcap_reader import scan_records

_COMPRESSION = {"none": CompressionType.NONE, "zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4}
_EPISODE_NAME = re.compile(r"^episode_(\d+)\.mcap")
_LIBRARY = f"robot_rl episode recorder v{FORMAT_VERSION}"
# How long blocking calls (start/end/close) wait between liveness checks of the writer thread.
_POLL_S = 0.5


def fsync_directory(directory: Path) -> None:
    """fsync a directory so a rename inside it survives power loss (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def next_episode_index(directory: Path) -> int:
    """One past the highest episode index present in any form (.mcap, .partial, .damaged, temporaries)."""
    indices = [int(m.group(1)) for p in directory.iterdir() if (m := _EPISODE_NAME.match(p.name))]
    return max(indices, default=-1) + 1


@dataclass
class _OpenEpisode:
    """Writer-thread state of the episode being written."""

    index: int
    partial: Path
    final: Path
    stream: IO[bytes]
    writer: Any  # mcap.writer.Writer; typed Any because its methods are unannotated
    channels: dict[str, tuple[int, str]] = field(default_factory=dict)  # topic -> (channel id, msgtype)
    schemas: dict[str, int] = field(default_factory=dict)
    sequence: dict[int, int] = field(default_factory=dict)
    steps: int = 0
    raw: int = 0
    rejected: int = 0
    dims: tuple[int, int] | None = None  # (O, A) fixed by the first step so the episode stacks into arrays
    last_reasons: tuple[str, ...] = ()
    last_step: StepRecord | None = None
    dirty_since: float | None = None
    error: BaseException | None = None


class EpisodeRecorder:
    """Records episodes to crash-safe MCAP files from a real-time loop without ever blocking it.

    `record_step`/`record_raw` are non-blocking and return False when the sample was dropped (queue full) or
    rejected (no open episode, malformed). `start_episode`, `end_episode` and `close` block; call them between
    episodes, not inside the control tick. One recorder per directory.
    """

    def __init__(self, config: RecorderConfig) -> None:
        if not 0.0 < config.flush_period_s <= 1.0:
            raise ValueError(f"flush_period_s must be in (0, 1] s, got {config.flush_period_s}")
        if config.queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {config.queue_size}")
        if config.compression not in _COMPRESSION:
            raise ValueError(f"compression must be one of {sorted(_COMPRESSION)}, got {config.compression!r}")
        self._config = config
        self._directory = Path(config.directory)
        self._directory.mkdir(parents=True, exist_ok=True)
        try:  # fail now, not in the writer thread, if the compression library is missing
            Writer(io.BytesIO(), compression=_COMPRESSION[config.compression])
        except Exception as exc:
            raise ValueError(f"compression {config.compression!r} is unavailable here: {exc!r}") from exc
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=config.queue_size)
        self._lock = threading.Lock()
        self._counts = {"written": 0, "raw_written": 0, "dropped": 0, "rejected": 0, "episodes": 0, "errors": 0}
        self._open_final: Path | None = None
        self._dropped_at_start = 0
        self._next_index = next_episode_index(self._directory)
        self._closed = False
        self._episode: _OpenEpisode | None = None  # writer thread only
        self._thread = threading.Thread(target=self._run, name="robot_rl-episode-writer", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------------------------------- caller side
    def start_episode(self, metadata: Mapping[str, str], *, wait: bool = True) -> Path:
        """Open `episode_<NNNNNN>.mcap.partial` and write `metadata`; returns the final `.mcap` path.

        `wait=False` only queues the request (a control loop rolling over to its next episode must not wait for
        an fsync); a failure then shows up in `stats()["errors"]` instead of being raised here.
        """
        if self._closed:
            raise RuntimeError("EpisodeRecorder is closed")
        if self._open_final is not None:
            raise RuntimeError(f"episode {self._open_final.name} is still open; call end_episode first")
        bad = {k: v for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)}
        if bad:
            raise ValueError(f"episode metadata must map str to str, got {bad!r}")
        index = self._next_index
        while (self._directory / f"episode_{index:06d}.mcap").exists():
            index += 1
        self._next_index = index + 1
        final = self._directory / f"episode_{index:06d}.mcap"
        done: Future[None] = Future()
        self._put_blocking(("start", index, final, dict(metadata), done))
        if wait:
            self._wait(done)
        self._open_final = final
        with self._lock:
            self._dropped_at_start = self._counts["dropped"]
        return final

    def record_step(self, step: StepRecord) -> bool:
        """Queue one control tick (arrays are copied). Never blocks; False if dropped or rejected."""
        if self._open_final is None:
            self._count("rejected")
            return False
        try:
            copy = StepRecord(
                step=int(step.step),
                stamp_ns=int(step.stamp_ns),
                observation=np.array(step.observation, dtype=np.float64).reshape(-1),
                policy_action=np.array(step.policy_action, dtype=np.float64).reshape(-1),
                executed_action=np.array(step.executed_action, dtype=np.float64).reshape(-1),
                reward_terms={str(k): float(v) for k, v in step.reward_terms.items()},
                intervention=bool(step.intervention),
                safety_reasons=tuple(str(r) for r in step.safety_reasons),
                terminated=bool(step.terminated),
                truncated=bool(step.truncated),
                replanned=bool(step.replanned),
                chunk_index=int(step.chunk_index),
                chunk_step=int(step.chunk_step),
            )
            if not 0 <= copy.stamp_ns < 2**64:
                raise ValueError(f"stamp_ns {copy.stamp_ns} outside the MCAP uint64 range")
        except (TypeError, ValueError, OverflowError):
            # A malformed sample must not raise into the control tick; it is counted instead.
            self._count("rejected")
            return False
        return self._put(("step", copy))

    def record_raw(self, topic: str, msgtype: str, cdr: bytes, log_time_ns: int, qos_yaml: str | None = None) -> bool:
        """Queue an already-serialized ROS 2 CDR message (e.g. /joint_states). Never blocks; False if not queued.

        `msgtype` must be known to the rosbags type store (its schema is embedded); `qos_yaml` is the publisher's
        offered QoS as rosbag2 writes it (stored as given; empty if None).
        """
        try:
            item = ("raw", str(topic), str(msgtype), bytes(cdr), int(log_time_ns), str(qos_yaml or ""))
            valid = (
                self._open_final is not None
                and 0 <= item[4] < 2**64
                and item[1].startswith("/")
                and item[1] not in (STEP_TOPIC, SAFETY_TOPIC)
                and known_msgtype(item[2])
            )
        except (TypeError, ValueError, OverflowError):
            valid = False
        if not valid:
            self._count("rejected")
            return False
        return self._put(item)

    def end_episode(
        self, *, terminated: bool, truncated: bool, extra: Mapping[str, str] | None = None, wait: bool = True
    ) -> Path:
        """Finish the file (summary, footer), fsync, verify by reading back, rename to `.mcap`, fsync the directory.

        Raises RuntimeError if the episode could not be written; its `.partial` is then left for `recover`.
        `wait=False` queues the request and returns at once (the file is final once the writer gets to it; a
        failure is counted in `stats()["errors"]`); steps recorded afterwards belong to the next episode.
        """
        if self._open_final is None:
            raise RuntimeError("no episode is open")
        extra = dict(extra or {})
        bad = {k: v for k, v in extra.items() if not isinstance(k, str) or not isinstance(v, str)}
        if bad:
            raise ValueError(f"extra metadata must map str to str, got {bad!r}")
        with self._lock:
            dropped = self._counts["dropped"] - self._dropped_at_start
        done: Future[None] = Future()
        final, self._open_final = self._open_final, None
        self._put_blocking(("end", bool(terminated), bool(truncated), extra, dropped, done))
        if wait:
            self._wait(done)
        return final

    def close(self) -> None:
        """End an open episode as truncated, stop and join the writer thread. Safe to call twice."""
        if self._closed:
            return
        try:
            if self._open_final is not None:
                self.end_episode(terminated=False, truncated=True, extra={"ended_by": "close"})
        finally:
            self._closed = True
            if self._thread.is_alive():
                self._put_blocking(("stop",))
                self._thread.join()

    def stats(self) -> dict[str, int]:
        """Counters: written (steps), raw_written, dropped (queue full), rejected, episodes, errors, queue_depth."""
        with self._lock:
            counts = dict(self._counts)
        counts["queue_depth"] = self._queue.qsize()
        return counts

    def __enter__(self) -> EpisodeRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def _put(self, item: tuple[Any, ...]) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._count("dropped")
            return False
        return True

    def _put_blocking(self, item: tuple[Any, ...]) -> None:
        # Control commands are never dropped; wait for room, but notice a dead writer instead of hanging.
        while True:
            if not self._thread.is_alive():
                raise RuntimeError("episode writer thread is not running")
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _wait(self, done: Future[None]) -> None:
        while True:
            try:
                done.result(timeout=_POLL_S)
                return
            except TimeoutError:
                if not self._thread.is_alive():
                    raise RuntimeError("episode writer thread died") from None

    # ----------------------------------------------------------------------------------------- writer thread
    def _run(self) -> None:
        period_s = self._config.flush_period_s
        while True:
            ep = self._episode
            timeout = None
            if ep is not None and ep.dirty_since is not None:
                timeout = max(0.0, ep.dirty_since + period_s - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None:
                if item[0] == "stop":
                    return
                self._handle(item)
            ep = self._episode
            if ep is not None and ep.dirty_since is not None and time.monotonic() >= ep.dirty_since + period_s:
                self._guarded(ep, self._flush, ep)

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "start":
            self._start(*item[1:])
        elif kind == "end":
            self._end(*item[1:])
        elif self._episode is None:
            self._count("rejected")  # raced with end_episode: there is no file for it
        elif self._episode.error is not None:
            # The episode's file failed: the sample is lost, say so.
            self._count("dropped")
            self._episode.rejected += 1
        elif kind == "step":
            self._guarded(self._episode, self._write_step, self._episode, item[1])
        elif kind == "raw":
            self._guarded(self._episode, self._write_raw, self._episode, *item[1:])

    def _guarded(self, ep: _OpenEpisode, fn: Any, *args: Any) -> None:
        # An I/O error (disk full, ...) must not kill the thread: mark the episode failed, keep its partial.
        try:
            fn(*args)
        except Exception as exc:
            ep.error = exc
            self._count("errors")

    def _start(self, index: int, final: Path, metadata: dict[str, str], done: Future[None]) -> None:
        if self._episode is not None:  # unreachable through the public API; never leave a file half-open
            self._abandon(self._episode)
        partial = final.with_name(final.name + ".partial")
        stream: IO[bytes] | None = None
        try:
            stream = open(partial, "xb")
            writer = Writer(
                stream,
                compression=_COMPRESSION[self._config.compression],
                use_chunking=True,
                enable_crcs=True,
            )
            ep = _OpenEpisode(index=index, partial=partial, final=final, stream=stream, writer=writer)
            writer.start(profile=PROFILE, library=_LIBRARY)
            header = {**metadata, "episode_index": str(index), "format_version": FORMAT_VERSION}
            header.setdefault("recorder_start_unix_ns", str(time.time_ns()))
            writer.add_metadata(EPISODE_METADATA, header)
            self._channel(ep, STEP_TOPIC, STEP_MSGTYPE, DEFAULT_QOS_YAML)
            self._channel(ep, SAFETY_TOPIC, SAFETY_MSGTYPE, DEFAULT_QOS_YAML)
            self._flush(ep)  # the header and metadata are durable before the first step
            fsync_directory(self._directory)
        except Exception as exc:
            if stream is not None:
                stream.close()
            done.set_exception(exc)
            return
        self._episode = ep
        done.set_result(None)

    def _channel(self, ep: _OpenEpisode, topic: str, msgtype: str, qos_yaml: str) -> int:
        if topic in ep.channels:
            channel_id, known = ep.channels[topic]
            if known != msgtype:
                raise ValueError(f"topic {topic} already carries {known}, got {msgtype}")
            return channel_id
        if msgtype not in ep.schemas:
            ep.schemas[msgtype] = ep.writer.register_schema(msgtype, SCHEMA_ENCODING, schema_text(msgtype).encode())
        metadata = {"offered_qos_profiles": qos_yaml, "topic_type_hash": type_hash(msgtype)}
        channel_id = int(ep.writer.register_channel(topic, MESSAGE_ENCODING, ep.schemas[msgtype], metadata))
        ep.channels[topic] = (channel_id, msgtype)
        return channel_id

    def _add(self, ep: _OpenEpisode, channel_id: int, stamp_ns: int, data: bytes) -> None:
        seq = ep.sequence.get(channel_id, 0)
        ep.sequence[channel_id] = seq + 1
        ep.writer.add_message(channel_id, log_time=stamp_ns, data=data, publish_time=stamp_ns, sequence=seq)
        if ep.dirty_since is None:
            ep.dirty_since = time.monotonic()

    def _write_step(self, ep: _OpenEpisode, step: StepRecord) -> None:
        dims = (step.observation.shape[0], step.policy_action.shape[0])
        if ep.dims is None:
            ep.dims = dims
        if dims != ep.dims or step.executed_action.shape[0] != dims[1]:
            # A shape change would make the whole episode unstackable; drop this step instead.
            ep.rejected += 1
            self._count("rejected")
            return
        try:
            payload = encode_step(step)
            safety = encode_safety(step.step, step.safety_reasons)
        except Exception:
            # Unencodable content (e.g. a reason that is not valid UTF-8) costs this step, not the episode.
            ep.rejected += 1
            self._count("rejected")
            return
        reasons = step.safety_reasons
        if reasons != ep.last_reasons:
            # Written before the step so a recovered prefix never holds a step without its reasons.
            self._add(ep, ep.channels[SAFETY_TOPIC][0], step.stamp_ns, safety)
            ep.last_reasons = reasons
        self._add(ep, ep.channels[STEP_TOPIC][0], step.stamp_ns, payload)
        ep.steps += 1
        ep.last_step = step
        self._count("written")

    def _write_raw(self, ep: _OpenEpisode, topic: str, msgtype: str, cdr: bytes, stamp_ns: int, qos: str) -> None:
        try:
            channel_id = self._channel(ep, topic, msgtype, qos if topic in ep.channels else normalize_qos_yaml(qos))
        except ValueError:
            ep.rejected += 1
            self._count("rejected")
            return
        self._add(ep, channel_id, stamp_ns, cdr)
        ep.raw += 1
        self._count("raw_written")

    def _flush(self, ep: _OpenEpisode) -> None:
        # Closing the chunk is what makes the data recoverable: a chunk is written whole or not at all.
        ep.writer.flush()
        os.fsync(ep.stream.fileno())
        ep.dirty_since = None

    def _end(self, terminated: bool, truncated: bool, extra: dict[str, str], dropped: int, done: Future[None]) -> None:
        ep, self._episode = self._episode, None
        if ep is None:
            done.set_exception(RuntimeError("no episode is open in the writer"))
            return
        if ep.error is not None:
            self._abandon(ep)
            done.set_exception(RuntimeError(f"recording {ep.partial} failed ({ep.error!r}); run recover() on it"))
            return
        try:
            ep.writer.flush()  # messages first, then the end record: a recovered prefix keeps this order
            end = {
                **extra,
                "terminated": str(terminated).lower(),
                "truncated": str(truncated).lower(),
                "steps": str(ep.steps),
                "raw_messages": str(ep.raw),
                "dropped": str(dropped + ep.rejected),
            }
            ep.writer.add_metadata(EPISODE_END_METADATA, end)
            ep.writer.finish()
            ep.stream.flush()
            os.fsync(ep.stream.fileno())
            ep.stream.close()
            self._verify(ep)
            os.replace(ep.partial, ep.final)
            fsync_directory(ep.final.parent)
        except Exception as exc:
            self._count("errors")
            self._abandon(ep)
            done.set_exception(RuntimeError(f"finishing {ep.partial} failed ({exc!r}); run recover() on it"))
            return
        self._count("episodes")
        done.set_result(None)

    def _verify(self, ep: _OpenEpisode) -> None:
        scan = scan_records(ep.partial.read_bytes())
        steps = sum(1 for m in scan.messages if scan.topic_of(m.channel_id) == STEP_TOPIC)
        if not scan.complete or steps != ep.steps:
            raise RuntimeError(
                f"read-back of {ep.partial} failed: complete={scan.complete}, steps {steps} != {ep.steps} "
                f"({scan.error})"
            )

    def _abandon(self, ep: _OpenEpisode) -> None:
        # Leave the .partial as it is on disk (what was flushed stays recoverable).
        try:
            ep.stream.close()
        except Exception:
            self._count("errors")
