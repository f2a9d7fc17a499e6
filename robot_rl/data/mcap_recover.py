"""Turn a crashed (`.partial`) or damaged episode file into a complete, verified `.mcap`.

Unlike `mcap recover`, which once exited 0 on an unreadable file, `recover` only reports success after the
rebuilt file has been read back as an episode. It is idempotent: rerunning it (also after a crash mid-recovery)
returns the same valid file.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from mcap.writer import CompressionType, Writer

from robot_rl.data.episode_record import (
    EPISODE_END_METADATA,
    EPISODE_METADATA,
    RECOVERY_METADATA,
    STEP_TOPIC,
)
from robot_rl.data.mcap_reader import McapScan, episode_from_scan, read_episode, scan_records
from robot_rl.data.mcap_writer import fsync_directory

_NAME = re.compile(r"^(?P<stem>.+)\.mcap(?:\.partial|\.damaged)?$")


def recover(path: str | Path) -> Path:
    """Rebuild the episode at `path` (`x.mcap.partial`, a damaged `x.mcap`, or `x.mcap.damaged`) as `x.mcap`.

    All complete records up to the first truncated or corrupt byte are kept (messages, schemas, channels,
    metadata), the end record gets `recovered="true"`, and a `robot_rl/recovery` metadata record says what was
    salvaged. The new file is fsynced, verified by reading it back, and renamed atomically into place; only then is
    the `.partial` removed. A damaged finished file is first moved aside to `x.mcap.damaged` (kept for forensics).

    Returns:
        Path of the readable `x.mcap` (unchanged if it was already valid).

    Raises:
        FileNotFoundError: neither `x.mcap`, `x.mcap.partial` nor `x.mcap.damaged` exists.
        ValueError: nothing recoverable (not an MCAP episode, or cut before its start metadata).
    """
    path = Path(path)
    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path}: expected a name like episode_000001.mcap[.partial]")
    directory = path.parent
    final = directory / f"{match['stem']}.mcap"
    partial = final.with_name(final.name + ".partial")
    damaged = final.with_name(final.name + ".damaged")

    if final.exists():
        try:
            read_episode(final)
        except ValueError:
            # Keep the damaged bytes, and free the final name for the rebuilt file.
            os.replace(final, damaged)
            fsync_directory(directory)
        else:
            if partial.exists():  # a previous recovery stopped between its rename and this unlink
                partial.unlink()
                fsync_directory(directory)
            return final

    source = partial if partial.exists() else damaged
    if not source.exists():
        raise FileNotFoundError(f"nothing to recover for {path}: no {final.name}, {partial.name} or {damaged.name}")
    data = source.read_bytes()
    scan = scan_records(data)
    if scan.header is None or scan.metadata_named(EPISODE_METADATA) is None:
        raise ValueError(
            f"{source}: nothing recoverable ({len(data)} bytes, stopped at: {scan.error}); the recording died "
            "before its first flush, delete the file"
        )

    tmp = final.with_name(final.name + ".recovering")
    try:
        if scan.complete:
            # Crashed after the footer was written but before the rename: the file is whole, just publish it.
            tmp.write_bytes(data)
        else:
            _rewrite(scan, tmp, source, len(data))
        _fsync_file(tmp)
        expected = sum(1 for m in scan.messages if scan.topic_of(m.channel_id) == STEP_TOPIC)
        episode = read_episode(tmp)  # verify by reading back before anything is replaced or removed
        if len(episode) != expected:
            raise ValueError(f"{tmp}: read back {len(episode)} steps, salvaged {expected}; kept {source} untouched")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)
    fsync_directory(directory)
    if source == partial:
        partial.unlink()
        fsync_directory(directory)
    return final


def _rewrite(scan: McapScan, out: Path, source: Path, source_bytes: int) -> None:
    """Write every salvaged record to `out` as a complete MCAP file."""
    # Messages whose channel record was lost cannot be interpreted; they are not part of the prefix.
    messages = [m for m in scan.messages if m.channel_id in scan.channels]
    episode = episode_from_scan(replace(scan, messages=messages), source)  # raises ValueError if undecodable
    end = scan.metadata_named(EPISODE_END_METADATA)
    if end is None:
        end = {
            "terminated": str(bool(len(episode) and episode.terminated[-1])).lower(),
            # The crash cut the episode: that is a truncation, never a termination.
            "truncated": "true",
            "steps": str(len(episode)),
            "dropped": "unknown",
        }
    end["recovered"] = "true"
    with open(out, "wb") as stream:
        writer: Any = Writer(stream, compression=CompressionType.NONE)  # untyped library class
        writer.start(profile=scan.header.profile if scan.header else "ros2", library="robot_rl recover")
        for record in scan.metadata:
            if record.name not in (EPISODE_END_METADATA, RECOVERY_METADATA):
                writer.add_metadata(record.name, dict(record.metadata))
        schema_ids = {
            old: writer.register_schema(s.name, s.encoding, s.data) for old, s in sorted(scan.schemas.items())
        }
        channel_ids = {
            old: writer.register_channel(c.topic, c.message_encoding, schema_ids.get(c.schema_id, 0), dict(c.metadata))
            for old, c in sorted(scan.channels.items())
        }
        for m in messages:
            writer.add_message(channel_ids[m.channel_id], m.log_time, m.data, m.publish_time, m.sequence)
        writer.flush()
        writer.add_metadata(EPISODE_END_METADATA, end)
        writer.add_metadata(
            RECOVERY_METADATA,
            {
                "recovered": "true",
                "recovered_from": source.name,
                "source_bytes": str(source_bytes),
                "salvaged_messages": str(len(messages)),
                "stopped_at": scan.error or "end of file",
            },
        )
        writer.finish()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
