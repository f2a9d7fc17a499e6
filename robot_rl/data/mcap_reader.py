"""Read recorded episode files back into arrays (numpy + mcap + rosbags, never rclpy).

Every damaged input ends in a `ValueError` that says what to do; nothing else escapes for a truncated or corrupted
file. The file is read whole into memory (episodes are megabytes) so a corrupted length field can never make the
parser allocate or read beyond the file.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, Footer, Header, Message, Metadata, Schema
from mcap.stream_reader import StreamReader, breakup_chunk

from robot_rl.data.episode_record import (
    EPISODE_END_METADATA,
    EPISODE_METADATA,
    PROFILE,
    RECOVERY_METADATA,
    SAFETY_TOPIC,
    STEP_TOPIC,
    DecodedStep,
    Recording,
    decode_safety,
    decode_step,
)

_FINISHED = re.compile(r"^episode_(\d+)\.mcap$")
# A chunk may expand at most this much; beyond it the size field is corrupt (our chunks are <= ~1 MiB).
_MAX_CHUNK_BYTES = 256 * 2**20
_KNOWN_OPCODES = frozenset(int(op) for op in Opcode)


@dataclass
class McapScan:
    """Every complete record of an MCAP byte string, in file order, up to the first damaged byte."""

    header: Header | None = None
    """The header record, if intact."""
    schemas: dict[int, Schema] = field(default_factory=dict)
    """Schemas by id."""
    channels: dict[int, Channel] = field(default_factory=dict)
    """Channels by id."""
    messages: list[Message] = field(default_factory=list)
    """Messages in file order."""
    metadata: list[Metadata] = field(default_factory=list)
    """Metadata records in file order."""
    complete: bool = False
    """True if the footer and closing magic were read (a finished file)."""
    error: str | None = None
    """Why scanning stopped before the footer (None for a complete file)."""

    def topic_of(self, channel_id: int) -> str | None:
        """Topic of a channel id, None if its channel record was lost."""
        channel = self.channels.get(channel_id)
        return channel.topic if channel is not None else None

    def metadata_named(self, name: str) -> dict[str, str] | None:
        """The last metadata record called `name`, or None."""
        found = [m.metadata for m in self.metadata if m.name == name]
        return dict(found[-1]) if found else None


def scan_records(data: bytes) -> McapScan:
    """Parse `data` record by record; stop (without raising) at the first truncated or corrupt record.

    Chunks are all-or-nothing: a chunk whose CRC, size or content does not check out is dropped with everything
    after it, so the result is always a prefix of what was written.
    """
    scan = McapScan()
    unknown_at = _first_unknown_record(data)
    if unknown_at is not None:
        # The MCAP parser skips records of unknown type (forward compatibility), so a chunk whose opcode byte was
        # flipped would vanish and the chunks after it be read: a gap, not a prefix. We never write unknown
        # records: stop there as at any other damage.
        data = data[:unknown_at]
    reader = StreamReader(BytesIO(data), emit_chunks=True, validate_crcs=True, record_size_limit=len(data))
    try:
        for record in reader.records:
            if isinstance(record, Chunk):
                if record.uncompressed_size > _MAX_CHUNK_BYTES:
                    raise ValueError(f"chunk claims {record.uncompressed_size} bytes uncompressed")
                inner = breakup_chunk(record, validate_crc=True)
            else:
                inner = [record]
            for rec in inner:
                _collect(scan, rec)
            if isinstance(record, Footer):
                scan.complete = True
    except Exception as exc:  # the mcap parser raises many types on damage; all mean "stop here"
        scan.complete = False
        scan.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if unknown_at is not None and not scan.error:
        scan.error = f"record of unknown type at byte {unknown_at}"
    return scan


def _first_unknown_record(data: bytes) -> int | None:
    """Offset of the first top-level record whose opcode MCAP does not define (None: all known or cut short)."""
    pos = 8  # after the magic
    while pos + 9 <= len(data):
        opcode, length = struct.unpack_from("<BQ", data, pos)
        if opcode not in _KNOWN_OPCODES:
            return pos
        if opcode == Opcode.FOOTER:
            return None
        pos += 9 + length
    return None


def _collect(scan: McapScan, rec: object) -> None:
    if isinstance(rec, Header):
        scan.header = rec
    elif isinstance(rec, Schema):
        scan.schemas.setdefault(rec.id, rec)
    elif isinstance(rec, Channel):
        scan.channels.setdefault(rec.id, rec)
    elif isinstance(rec, Message):
        scan.messages.append(rec)
    elif isinstance(rec, Metadata):
        scan.metadata.append(rec)


def read_episode(path: str | Path) -> Recording:
    """Read a finished `episode_<N>.mcap` into arrays.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is unfinished (`.partial`), truncated, corrupted or not a robot_rl episode.
    """
    path = Path(path)
    if path.name.endswith(".partial"):
        raise ValueError(
            f"{path} is an unfinished recording (the recorder crashed or is still writing it); run "
            f"`python -c \"from robot_rl.data.mcap_recover import recover; print(recover('{path}'))\"` "
            "and read the .mcap it returns"
        )
    scan = scan_records(path.read_bytes())
    if not scan.complete:
        raise ValueError(
            f"{path} is truncated or corrupted ({scan.error}); recover(path) salvages its complete records "
            "into a new file"
        )
    return episode_from_scan(scan, path)


def episode_from_scan(scan: McapScan, path: Path) -> Recording:
    """Assemble a `Recording` from scanned records; raises ValueError if they do not form one."""
    if scan.header is None or scan.header.profile != PROFILE:
        raise ValueError(f"{path}: not a ROS 2 MCAP file (profile {getattr(scan.header, 'profile', None)!r})")
    start = scan.metadata_named(EPISODE_METADATA)
    if start is None:
        raise ValueError(f"{path}: no {EPISODE_METADATA!r} metadata record; not a robot_rl episode")
    metadata = {**start, **(scan.metadata_named(EPISODE_END_METADATA) or {})}
    recovery = scan.metadata_named(RECOVERY_METADATA)
    if recovery is not None:
        metadata.update(recovery)
    steps: list[DecodedStep] = []
    stamps: list[int] = []
    reason_updates: dict[int, tuple[str, ...]] = {}
    try:
        for msg in scan.messages:
            topic = scan.topic_of(msg.channel_id)
            if topic == STEP_TOPIC:
                steps.append(decode_step(msg.data))
                stamps.append(msg.log_time)
            elif topic == SAFETY_TOPIC:
                step, reasons = decode_safety(msg.data)
                reason_updates[step] = reasons
    except Exception as exc:  # rosbags' CDR decoder raises assorted types on garbage
        raise ValueError(f"{path}: undecodable message ({type(exc).__name__}: {exc})") from exc
    return _stack(path, metadata, steps, stamps, reason_updates, recovered=recovery is not None)


def _stack(
    path: Path,
    metadata: dict[str, str],
    steps: list[DecodedStep],
    stamps: list[int],
    reason_updates: dict[int, tuple[str, ...]],
    *,
    recovered: bool,
) -> Recording:
    obs_dims = {s.observation.shape[0] for s in steps}
    act_dims = {s.policy_action.shape[0] for s in steps} | {s.executed_action.shape[0] for s in steps}
    if len(obs_dims) > 1 or len(act_dims) > 1:
        raise ValueError(f"{path}: step sizes vary within the episode (observation {obs_dims}, action {act_dims})")
    n_obs = obs_dims.pop() if obs_dims else 0
    n_act = act_dims.pop() if act_dims else 0
    terms = sorted({k for s in steps for k in s.reward_terms})
    # Reasons are only written when they change: carry the last update forward.
    reasons: list[tuple[str, ...]] = []
    current: tuple[str, ...] = ()
    for s in steps:
        current = reason_updates.get(s.step, current)
        reasons.append(current)
    return Recording(
        path=path,
        metadata=metadata,
        steps=np.array([s.step for s in steps], dtype=np.int64),
        stamps_ns=np.array(stamps, dtype=np.int64),
        observations=np.array([s.observation for s in steps], dtype=np.float64).reshape(len(steps), n_obs),
        policy_actions=np.array([s.policy_action for s in steps], dtype=np.float64).reshape(len(steps), n_act),
        executed_actions=np.array([s.executed_action for s in steps], dtype=np.float64).reshape(len(steps), n_act),
        rewards={t: np.array([s.reward_terms.get(t, np.nan) for s in steps], dtype=np.float64) for t in terms},
        intervention=np.array([s.intervention for s in steps], dtype=np.bool_),
        terminated=np.array([s.terminated for s in steps], dtype=np.bool_),
        truncated=np.array([s.truncated for s in steps], dtype=np.bool_),
        safety_reasons=reasons,
        recovered=recovered,
    )


def list_episodes(directory: str | Path) -> list[Path]:
    """Finished episode files (`episode_<N>.mcap`, not `.partial`) in index order."""
    found = [(int(m.group(1)), p) for p in Path(directory).iterdir() if (m := _FINISHED.match(p.name))]
    return [p for _, p in sorted(found)]
