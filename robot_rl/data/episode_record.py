"""Episode records and their ROS 2 encoding (numpy + rosbags only, never rclpy).

One control tick becomes one `std_msgs/msg/Float64MultiArray` on `/robot_rl/step`. Its `layout.dim` is used as a
list of *segments*, not as nested array dimensions: each dim names one slice of `data`, in order, and
`stride == size`. A generic ROS tool can therefore split `data` by walking the labels:

    observation[O] policy_action[A] executed_action[A] reward/<term>[1]... intervention[1] terminated[1]
    truncated[1] step[1]

Safety-filter reasons go to `/robot_rl/safety` as `diagnostic_msgs/msg/DiagnosticStatus`, only on steps where the
set of reasons changed (KeyValue "step" = step index, one KeyValue "reason" per reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from robot_rl.data.step_record import StepRecord as StepRecord  # the one per-step record, re-exported

STEP_TOPIC = "/robot_rl/step"
STEP_MSGTYPE = "std_msgs/msg/Float64MultiArray"
SAFETY_TOPIC = "/robot_rl/safety"
SAFETY_MSGTYPE = "diagnostic_msgs/msg/DiagnosticStatus"
EPISODE_METADATA = "robot_rl/episode"
EPISODE_END_METADATA = "robot_rl/episode_end"
RECOVERY_METADATA = "robot_rl/recovery"
FORMAT_VERSION = "1"
PROFILE = "ros2"
MESSAGE_ENCODING = "cdr"
SCHEMA_ENCODING = "ros2msg"
REWARD_PREFIX = "reward/"
# Fixed scalar segments after the vectors and reward terms; the reader relies on these labels, not on positions.
FLAG_LABELS = ("intervention", "terminated", "truncated", "step")
CHUNK_LABEL = "chunk"
"""Segment [chunk_index, chunk_step, replanned] of a step (`StepRecord`; -1 = no chunk); older files lack it."""

# rosbag2's own defaults for a recorder-owned publisher (Jazzy/Kilted spelling); "infinite" durations are
# written as rmw's max (sec 9223372036, nsec 854775807), exactly as `ros2 bag record` does.
_INFINITE = "    sec: 9223372036\n    nsec: 854775807\n"
DEFAULT_QOS_YAML = (
    "- history: keep_last\n"
    "  depth: 10\n"
    "  reliability: reliable\n"
    "  durability: volatile\n"
    f"  deadline:\n{_INFINITE}"
    f"  lifespan:\n{_INFINITE}"
    "  liveliness: automatic\n"
    f"  liveliness_lease_duration:\n{_INFINITE}"
    "  avoid_ros_namespace_conventions: false\n"
)


_QOS_DEFAULTS: dict[str, object] = {
    "history": "keep_last",
    "depth": 10,
    "reliability": "reliable",
    "durability": "volatile",
    "deadline": None,
    "lifespan": None,
    "liveliness": "automatic",
    "liveliness_lease_duration": None,
    "avoid_ros_namespace_conventions": False,
}


def normalize_qos_yaml(text: str) -> str:
    """Complete an `offered_qos_profiles` YAML with rosbag2's defaults for missing keys ("" if unparseable/empty).

    rosbags (and rosbag2) refuse to open a file whose QoS entry lacks a key such as `deadline`, so a partial
    profile handed to `record_raw` would make the whole episode unreadable; the values given are kept.
    """
    from ruamel.yaml import YAML  # rosbags' own YAML dependency

    try:
        profiles = YAML(typ="safe").load(text) if text.strip() else None
    except Exception:
        return ""
    if not isinstance(profiles, list) or not all(isinstance(p, dict) for p in profiles):
        return ""
    out = []
    for profile in profiles:
        lines = []
        for key, default in _QOS_DEFAULTS.items():
            value = profile.get(key, default)
            if default is None:  # a duration
                sec, nsec = 9223372036, 854775807
                if isinstance(value, dict):
                    sec, nsec = int(value.get("sec", sec)), int(value.get("nsec", nsec))
                lines.append(f"  {key}:\n    sec: {sec}\n    nsec: {nsec}\n")
            elif isinstance(value, bool):
                lines.append(f"  {key}: {str(value).lower()}\n")
            elif isinstance(value, int | str) and "\n" not in str(value) and ":" not in str(value):
                lines.append(f"  {key}: {value}\n")
            else:
                lines.append(f"  {key}: {default}\n")
        out.append("-" + "".join(lines)[1:])
    result = "".join(out)
    try:  # never store a profile that a reader would choke on
        YAML(typ="safe").load(result)
    except Exception:
        return ""
    return result


@dataclass(frozen=True)
class RecorderConfig:
    """Settings of an `EpisodeRecorder`."""

    directory: Path
    """Folder that receives `episode_<NNNNNN>.mcap` files (created if missing)."""
    flush_period_s: float = 0.5
    """At most this much recorded time lives only in memory; a crash loses at most this (must be in (0, 1])."""
    queue_size: int = 10_000
    """Bound of the writer queue; when full, record_* drop and count instead of blocking the control tick."""
    compression: str = "none"
    """Chunk compression: "none", "zstd" or "lz4" (the latter two need the zstandard / lz4 packages)."""


@dataclass(frozen=True)
class Recording:
    """One recorded episode file as written, stacked into arrays (T recorded ticks, O observation dims, A action
    dims). `robot_rl.data.datasets.sources.mcap` turns it into training `Episode`s (the one episode type)."""

    path: Path
    """File it was read from."""
    metadata: dict[str, str]
    """Start metadata merged with the end record (terminated, truncated, steps, dropped, extras)."""
    steps: npt.NDArray[np.int64]
    """[T] step indices; a gap means the recorder dropped steps there."""
    stamps_ns: npt.NDArray[np.int64]
    """[T] control-tick times (ns)."""
    observations: npt.NDArray[np.float64]
    """[T, O] observations."""
    policy_actions: npt.NDArray[np.float64]
    """[T, A] actions the policy asked for (may hold NaN)."""
    executed_actions: npt.NDArray[np.float64]
    """[T, A] actions actually sent."""
    rewards: dict[str, npt.NDArray[np.float64]]
    """term -> [T] reward term values (NaN where a step lacked the term)."""
    intervention: npt.NDArray[np.bool_]
    """[T] human-intervention flags."""
    terminated: npt.NDArray[np.bool_]
    """[T] termination flags."""
    truncated: npt.NDArray[np.bool_]
    """[T] truncation flags."""
    safety_reasons: list[tuple[str, ...]]
    """[T] safety-chain reasons per step."""
    recovered: bool
    """True if this file was rebuilt by `recover()` from a crashed recording."""

    def __len__(self) -> int:
        return int(self.steps.shape[0])


@dataclass(frozen=True)
class DecodedStep:
    """The content of one `/robot_rl/step` message (the stamp lives in the MCAP record)."""

    step: int
    """Step index."""
    observation: npt.NDArray[np.float64]
    """[O] observation."""
    policy_action: npt.NDArray[np.float64]
    """[A] policy action."""
    executed_action: npt.NDArray[np.float64]
    """[A] executed action."""
    reward_terms: dict[str, float]
    """Reward terms."""
    intervention: bool
    """Intervention flag."""
    terminated: bool
    """Termination flag."""
    truncated: bool
    """Truncation flag."""
    extra: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    """Segments with labels this version does not know (kept so newer writers stay readable)."""


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The rosbags type store used for schemas and CDR: Kilted (the project's ROS wheels), else Jazzy."""
    store = getattr(Stores, "ROS2_KILTED", None) or Stores.ROS2_JAZZY
    return get_typestore(store)


@lru_cache(maxsize=64)
def schema_text(msgtype: str) -> str:
    """Full `ros2msg` definition (with dependencies) of `msgtype`, as rosbag2 writes it into MCAP schemas."""
    return typestore().generate_msgdef(msgtype, ros_version=2)[0]


@lru_cache(maxsize=64)
def type_hash(msgtype: str) -> str:
    """RIHS01 type hash, written as the channel's `topic_type_hash` like rosbag2 (Jazzy+) does."""
    return typestore().hash_rihs01(msgtype)


def known_msgtype(msgtype: str) -> bool:
    """True if the type store can produce a schema for `msgtype`."""
    return msgtype in typestore().fielddefs


def encode_step(record: StepRecord) -> bytes:
    """Serialize a step as CDR `std_msgs/msg/Float64MultiArray` with labelled segments."""
    types = typestore().types
    dim_t = types["std_msgs/msg/MultiArrayDimension"]
    segments: list[tuple[str, npt.NDArray[np.float64]]] = [
        ("observation", np.asarray(record.observation, dtype=np.float64).reshape(-1)),
        ("policy_action", np.asarray(record.policy_action, dtype=np.float64).reshape(-1)),
        ("executed_action", np.asarray(record.executed_action, dtype=np.float64).reshape(-1)),
    ]
    segments += [(REWARD_PREFIX + name, np.array([value], np.float64)) for name, value in record.reward_terms.items()]
    flags = (float(record.intervention), float(record.terminated), float(record.truncated), float(record.step))
    segments += [(label, np.array([value], np.float64)) for label, value in zip(FLAG_LABELS, flags)]
    # Where the policy action came from in an action-chunked policy (chunk index, element, chunk boundary); a reader
    # that does not know the segment keeps it in `DecodedStep.extra["chunk"]`.
    chunk = (float(record.chunk_index), float(record.chunk_step), float(record.replanned))
    segments.append((CHUNK_LABEL, np.array(chunk, np.float64)))
    dims = [dim_t(label=label, size=len(values), stride=len(values)) for label, values in segments]
    layout = types["std_msgs/msg/MultiArrayLayout"](dim=dims, data_offset=0)
    data = np.concatenate([values for _, values in segments])
    msg = types[STEP_MSGTYPE](layout=layout, data=data)
    return bytes(typestore().serialize_cdr(msg, STEP_MSGTYPE))


def decode_step(cdr: bytes) -> DecodedStep:
    """Parse a `/robot_rl/step` message; raises ValueError if the layout does not match the data."""
    msg: Any = typestore().deserialize_cdr(cdr, STEP_MSGTYPE)
    data = np.asarray(msg.data, dtype=np.float64)
    segments: dict[str, npt.NDArray[np.float64]] = {}
    offset = int(msg.layout.data_offset)
    for dim in msg.layout.dim:
        size = int(dim.size)
        if offset + size > data.shape[0]:
            raise ValueError(f"step layout overruns data: segment {dim.label!r} ends at {offset + size} > {len(data)}")
        segments[str(dim.label)] = data[offset : offset + size].copy()
        offset += size
    missing = [k for k in ("observation", "policy_action", "executed_action", *FLAG_LABELS) if k not in segments]
    if missing:
        raise ValueError(f"step message lacks segments {missing}")
    rewards = {k[len(REWARD_PREFIX) :]: float(v[0]) for k, v in segments.items() if k.startswith(REWARD_PREFIX)}
    known = {"observation", "policy_action", "executed_action", *FLAG_LABELS}
    extra = {k: v for k, v in segments.items() if k not in known and not k.startswith(REWARD_PREFIX)}
    return DecodedStep(
        step=int(segments["step"][0]),
        observation=segments["observation"],
        policy_action=segments["policy_action"],
        executed_action=segments["executed_action"],
        reward_terms=rewards,
        intervention=bool(segments["intervention"][0]),
        terminated=bool(segments["terminated"][0]),
        truncated=bool(segments["truncated"][0]),
        extra=extra,
    )


def encode_safety(step: int, reasons: tuple[str, ...]) -> bytes:
    """Serialize the safety reasons of `step` as CDR `diagnostic_msgs/msg/DiagnosticStatus` (WARN, or OK if none)."""
    types = typestore().types
    kv = types["diagnostic_msgs/msg/KeyValue"]
    values = [kv(key="step", value=str(step)), *(kv(key="reason", value=r) for r in reasons)]
    msg = types[SAFETY_MSGTYPE](
        level=1 if reasons else 0,
        name="robot_rl/safety",
        message="; ".join(reasons) if reasons else "ok",
        hardware_id="",
        values=values,
    )
    return bytes(typestore().serialize_cdr(msg, SAFETY_MSGTYPE))


def decode_safety(cdr: bytes) -> tuple[int, tuple[str, ...]]:
    """Parse a `/robot_rl/safety` message into (step, reasons)."""
    msg: Any = typestore().deserialize_cdr(cdr, SAFETY_MSGTYPE)
    steps = [int(v.value) for v in msg.values if v.key == "step"]
    if len(steps) != 1:
        raise ValueError(f"safety message must carry exactly one 'step' key, got {len(steps)}")
    return steps[0], tuple(str(v.value) for v in msg.values if v.key == "reason")
