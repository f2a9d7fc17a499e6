"""The human-in-the-loop stream's wire format: one executed step of the policy node as `bytes` (numpy only).

The policy node streams every step it executed to the learner process; the ROS shell carries these bytes in a
standard message (`std_msgs/msg/UInt8MultiArray`, `data` field, empty layout), so no custom message package is
built. Version 1, all integers little-endian:

    offset  size   field
    0       4      magic b"RRLS"
    4       1      version (1)
    5       4      H: header length in bytes (uint32)
    9       H      header: one compact UTF-8 JSON object (no NaN/Infinity tokens, no duplicate keys)
    9+H     8·N    payload: float64 observation[O] | policy_action[A] | executed_action[A] | reward values[R]

N = O + 2A + R exactly (no trailing bytes). Every float travels as raw IEEE-754 bits, so values — NaN payloads
included — come back bit for bit; JSON holds only integers, booleans and strings. Header keys (all required):
`run_id` (changes when the node restarts), `seq` (per run, from 0, +1 per message), `episode` (the session's
episode index), `bundle_sha256` (64 hex digits, or "" when unknown), `obs_dim` O, `act_dim` A, `reward_terms`
(the R term names, in payload order), `record` (the `StepRecord`'s scalar fields by name) and `episode_end`
(null, or the end record on an episode's last step). Any change to this layout bumps the version; a decoder
refuses other versions and unknown keys rather than guessing.

`decode` raises `WireError` (a `ValueError` with a `reason`) for every malformed input and nothing else.
No pickle anywhere.
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from robot_rl.data.step_record import StepRecord

MAGIC = b"RRLS"
"""First four bytes of every stream message ("robot_rl stream")."""
WIRE_VERSION = 1
"""Version of the layout described in the module docstring."""
ROS_MSGTYPE = "std_msgs/msg/UInt8MultiArray"
"""Standard ROS 2 type that carries the bytes (in `data`); no custom message build needed."""
MAX_HEADER_BYTES = 65_536
"""Largest header accepted: a corrupt length field must not make the decoder trust a huge JSON document."""
MAX_RUN_ID_CHARS = 128
"""Longest `run_id` accepted (a uuid4 hex is 32)."""

_PREFIX = struct.Struct("<4sBI")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_I64 = 2**63
_U64 = 2**64
_RECORD_KEYS = (
    "step",
    "stamp_ns",
    "intervention",
    "safety_reasons",
    "terminated",
    "truncated",
    "intervention_onset",
    "intervention_offset",
    "source",
    "safety_held",
    "safety_changed_by",
    "is_success",
    "replanned",
    "policy_error",
    "chunk_index",
    "chunk_step",
)
_END_KEYS = ("steps", "terminated", "truncated", "is_success", "intervention_steps", "ended_by")
_HEADER_KEYS = (
    "run_id",
    "seq",
    "episode",
    "bundle_sha256",
    "obs_dim",
    "act_dim",
    "reward_terms",
    "record",
    "episode_end",
)


class WireError(ValueError):
    """A stream message could not be encoded or decoded; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"stream message rejected: {reason}")
        self.reason = reason
        """What was wrong, naming the field and the offending value."""


@dataclass(frozen=True)
class EpisodeEndInfo:
    """How an episode ended, sent with its last step (mirrors the episode session's `EpisodeEnd`)."""

    steps: int
    """Control steps the episode took."""
    terminated: bool
    """The robot reported a terminal state (equals the last step's `terminated`)."""
    truncated: bool
    """Cut without a terminal state (equals the last step's `truncated`)."""
    is_success: bool | None
    """Task success at the end (None if no success signal was received)."""
    intervention_steps: int
    """Steps of this episode on which a human drove."""
    ended_by: str
    """Who ended it: "robot", "max_steps", "service" or "halt"."""


@dataclass(frozen=True)
class StreamMessage:
    """One executed step as streamed from the policy node to the learner."""

    run_id: str
    """Identity of the policy node's run; a new value means the node restarted (its `seq` starts again at 0)."""
    seq: int
    """Message number within the run, from 0, +1 per message: a gap is a loss, a repeat a duplicate."""
    episode: int
    """Episode index within the run (0-based), as the episode session counts them."""
    bundle_sha256: str
    """sha256 (hex) of the ONNX model that produced the step ("" when unknown)."""
    record: StepRecord
    """The step itself, as the recorder would write it (physical actions)."""
    episode_end: EpisodeEndInfo | None = None
    """Set on an episode's last step (whose record then carries `terminated` or `truncated`); else None."""


def new_run_id() -> str:
    """A fresh run identity for a policy node start (random: two starts never share one)."""
    return uuid.uuid4().hex


# ------------------------------------------------------------------------------------------------- encode


def encode(msg: StreamMessage) -> bytes:
    """Serialize `msg` (arrays as float64, exactly).

    Raises:
        WireError: the message breaks the contract (the same checks `decode` makes), e.g. a non-finite executed
            action or reward term, both `terminated` and `truncated`, sizes that differ between the actions.
    """
    try:
        return _encode(msg)
    except WireError:
        raise
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:  # odd field types from the caller
        raise WireError(f"cannot encode: {type(exc).__name__}: {exc}") from exc


def _encode(msg: StreamMessage) -> bytes:
    rec = msg.record
    obs = np.asarray(rec.observation, dtype=np.float64).reshape(-1)
    policy = np.asarray(rec.policy_action, dtype=np.float64).reshape(-1)
    executed = np.asarray(rec.executed_action, dtype=np.float64).reshape(-1)
    names = [str(k) for k in rec.reward_terms]
    rewards = np.array([float(v) for v in rec.reward_terms.values()], dtype=np.float64)
    record: dict[str, Any] = {
        "step": int(rec.step),
        "stamp_ns": int(rec.stamp_ns),
        "intervention": bool(rec.intervention),
        "safety_reasons": [str(r) for r in rec.safety_reasons],
        "terminated": bool(rec.terminated),
        "truncated": bool(rec.truncated),
        "intervention_onset": bool(rec.intervention_onset),
        "intervention_offset": bool(rec.intervention_offset),
        "source": str(rec.source),
        "safety_held": bool(rec.safety_held),
        "safety_changed_by": [str(r) for r in rec.safety_changed_by],
        "is_success": None if rec.is_success is None else bool(rec.is_success),
        "replanned": bool(rec.replanned),
        "policy_error": str(rec.policy_error),
        "chunk_index": int(rec.chunk_index),
        "chunk_step": int(rec.chunk_step),
    }
    end = msg.episode_end
    header: dict[str, Any] = {
        "run_id": str(msg.run_id),
        "seq": int(msg.seq),
        "episode": int(msg.episode),
        "bundle_sha256": str(msg.bundle_sha256),
        "obs_dim": int(obs.shape[0]),
        "act_dim": int(executed.shape[0]),
        "reward_terms": names,
        "record": record,
        "episode_end": None
        if end is None
        else {
            "steps": int(end.steps),
            "terminated": bool(end.terminated),
            "truncated": bool(end.truncated),
            "is_success": None if end.is_success is None else bool(end.is_success),
            "intervention_steps": int(end.intervention_steps),
            "ended_by": str(end.ended_by),
        },
    }
    if policy.shape != executed.shape:
        raise WireError(f"policy_action has {policy.shape[0]} values, executed_action {executed.shape[0]}")
    if len(set(names)) != len(names):
        raise WireError(f"reward term names repeat: {names}")
    # The sender checks what the receiver checks, so anything encoded also decodes.
    _check_header(header)
    _check_values(executed, rewards, names)
    # ensure_ascii: any str (even a lone surrogate from a bad reason string) round-trips through the JSON escapes.
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")
    if len(text) > MAX_HEADER_BYTES:
        raise WireError(f"header of {len(text)} bytes exceeds {MAX_HEADER_BYTES}")
    payload = np.concatenate([obs, policy, executed, rewards]).astype("<f8", copy=False).tobytes()
    return _PREFIX.pack(MAGIC, WIRE_VERSION, len(text)) + text + payload


# ------------------------------------------------------------------------------------------------- decode


def decode(
    data: bytes | bytearray | memoryview, *, obs_dim: int | None = None, act_dim: int | None = None
) -> StreamMessage:
    """Parse one stream message; `obs_dim`/`act_dim`, when given, are the sizes the receiver expects.

    Accepts any buffer (`bytes`, `bytearray`, `memoryview`, the `array.array` rclpy gives for a uint8[] field).

    Raises:
        WireError: truncated or oversized input, wrong magic or version, a header that is not the documented
            JSON object, a forbidden non-finite value (executed action, reward term), sizes that differ from the
            declared or expected ones. Nothing else escapes.
    """
    try:
        raw = bytes(memoryview(data))  # any buffer-protocol object, copied once
    except TypeError as exc:
        raise WireError(f"expected bytes, got {type(data).__name__}") from exc
    try:
        return _decode(raw, obs_dim, act_dim)
    except WireError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, UnicodeError) as exc:
        # Belt and braces: every check above should already have named the problem; this keeps the promise that
        # a malformed message is one WireError, never a crash of the learner's receive callback.
        raise WireError(f"malformed message ({type(exc).__name__}: {exc})") from exc


def _decode(raw: bytes, obs_dim: int | None, act_dim: int | None) -> StreamMessage:
    if len(raw) < _PREFIX.size:
        raise WireError(f"truncated: {len(raw)} bytes, the fixed prefix alone is {_PREFIX.size}")
    magic, version, header_len = _PREFIX.unpack_from(raw, 0)
    if magic != MAGIC:
        raise WireError(f"bad magic {magic!r} (expected {MAGIC!r}): not a robot_rl stream message")
    if version != WIRE_VERSION:
        raise WireError(f"wire version {version} is not supported (this reader knows version {WIRE_VERSION})")
    if header_len > MAX_HEADER_BYTES:
        raise WireError(f"header length {header_len} exceeds {MAX_HEADER_BYTES}")
    end = _PREFIX.size + header_len
    if end > len(raw):
        raise WireError(f"truncated: header of {header_len} bytes but only {len(raw) - _PREFIX.size} follow")
    header = _parse_json(raw[_PREFIX.size : end])
    _check_header(header)
    n_obs, n_act = header["obs_dim"], header["act_dim"]
    names: list[str] = header["reward_terms"]
    if obs_dim is not None and n_obs != obs_dim:
        raise WireError(f"observation has {n_obs} values, expected {obs_dim}")
    if act_dim is not None and n_act != act_dim:
        raise WireError(f"action has {n_act} values, expected {act_dim}")
    n_values = n_obs + 2 * n_act + len(names)
    payload = raw[end:]
    if len(payload) != 8 * n_values:
        raise WireError(
            f"payload is {len(payload)} bytes, the header declares {n_values} float64 values ({8 * n_values} bytes)"
        )
    values = np.frombuffer(payload, dtype="<f8").astype(np.float64)  # native-endian, writable copy
    obs = values[:n_obs]
    policy = values[n_obs : n_obs + n_act]
    executed = values[n_obs + n_act : n_obs + 2 * n_act]
    rewards = values[n_obs + 2 * n_act :]
    _check_values(executed, rewards, names)
    r = header["record"]
    record = StepRecord(
        step=r["step"],
        stamp_ns=r["stamp_ns"],
        observation=obs.copy(),
        policy_action=policy.copy(),
        executed_action=executed.copy(),
        reward_terms={name: float(v) for name, v in zip(names, rewards, strict=True)},
        intervention=r["intervention"],
        safety_reasons=tuple(r["safety_reasons"]),
        terminated=r["terminated"],
        truncated=r["truncated"],
        intervention_onset=r["intervention_onset"],
        intervention_offset=r["intervention_offset"],
        source=r["source"],
        safety_held=r["safety_held"],
        safety_changed_by=tuple(r["safety_changed_by"]),
        is_success=r["is_success"],
        replanned=r["replanned"],
        policy_error=r["policy_error"],
        chunk_index=r["chunk_index"],
        chunk_step=r["chunk_step"],
    )
    e = header["episode_end"]
    end_info = (
        None
        if e is None
        else EpisodeEndInfo(
            steps=e["steps"],
            terminated=e["terminated"],
            truncated=e["truncated"],
            is_success=e["is_success"],
            intervention_steps=e["intervention_steps"],
            ended_by=e["ended_by"],
        )
    )
    return StreamMessage(
        run_id=header["run_id"],
        seq=header["seq"],
        episode=header["episode"],
        bundle_sha256=header["bundle_sha256"],
        record=record,
        episode_end=end_info,
    )


def _parse_json(text: bytes) -> dict[str, Any]:
    def no_constants(token: str) -> Any:
        raise WireError(f"header holds the non-JSON number {token}")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise WireError(f"header repeats keys {sorted({k for k in keys if keys.count(k) > 1})}")
        return dict(pairs)

    try:
        obj = json.loads(text.decode("utf-8"), parse_constant=no_constants, object_pairs_hook=no_duplicates)
    except UnicodeDecodeError as exc:
        raise WireError(f"header is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except RecursionError as exc:
        raise WireError("header JSON nests too deeply") from exc
    except json.JSONDecodeError as exc:
        raise WireError(f"header is not JSON ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(obj, dict):
        raise WireError(f"header must be a JSON object, got {type(obj).__name__}")
    return obj


# ------------------------------------------------------------------------------------------------- checks


def _check_header(h: Mapping[str, Any]) -> None:
    _exact_keys("header", h, _HEADER_KEYS)
    run_id = h["run_id"]
    if not isinstance(run_id, str) or not 0 < len(run_id) <= MAX_RUN_ID_CHARS:
        raise WireError(f"run_id must be a non-empty string of at most {MAX_RUN_ID_CHARS} chars, got {run_id!r}")
    _int("seq", h["seq"], 0, _I64)
    _int("episode", h["episode"], 0, _I64)
    sha = h["bundle_sha256"]
    if not isinstance(sha, str) or not (sha == "" or _SHA256.match(sha)):
        raise WireError(f"bundle_sha256 must be 64 lowercase hex digits or empty, got {sha!r}")
    _int("obs_dim", h["obs_dim"], 1, _I64)
    _int("act_dim", h["act_dim"], 1, _I64)
    _strings("reward_terms", h["reward_terms"])
    if len(set(h["reward_terms"])) != len(h["reward_terms"]):
        raise WireError(f"reward term names repeat: {h['reward_terms']}")
    r = h["record"]
    if not isinstance(r, dict):
        raise WireError(f"record must be an object, got {type(r).__name__}")
    _exact_keys("record", r, _RECORD_KEYS)
    _int("record.step", r["step"], 0, _I64)
    _int("record.stamp_ns", r["stamp_ns"], 0, _U64)
    for key in (
        "intervention",
        "terminated",
        "truncated",
        "intervention_onset",
        "intervention_offset",
        "safety_held",
        "replanned",
    ):
        _bool(f"record.{key}", r[key])
    _optional_bool("record.is_success", r["is_success"])
    _strings("record.safety_reasons", r["safety_reasons"])
    _strings("record.safety_changed_by", r["safety_changed_by"])
    _string("record.source", r["source"])
    _string("record.policy_error", r["policy_error"])
    _int("record.chunk_index", r["chunk_index"], -1, _I64)
    _int("record.chunk_step", r["chunk_step"], -1, _I64)
    if r["terminated"] and r["truncated"]:
        raise WireError("record is both terminated and truncated (truncation is not termination)")
    e = h["episode_end"]
    if e is None:
        return
    if not isinstance(e, dict):
        raise WireError(f"episode_end must be null or an object, got {type(e).__name__}")
    _exact_keys("episode_end", e, _END_KEYS)
    _int("episode_end.steps", e["steps"], 0, _I64)
    _bool("episode_end.terminated", e["terminated"])
    _bool("episode_end.truncated", e["truncated"])
    _optional_bool("episode_end.is_success", e["is_success"])
    _int("episode_end.intervention_steps", e["intervention_steps"], 0, _I64)
    _string("episode_end.ended_by", e["ended_by"])
    if (e["terminated"], e["truncated"]) != (r["terminated"], r["truncated"]) or not (
        r["terminated"] or r["truncated"]
    ):
        raise WireError(
            f"episode_end (terminated={e['terminated']}, truncated={e['truncated']}) must ride on the episode's "
            f"last step with the same flags; the record has terminated={r['terminated']}, truncated={r['truncated']}"
        )


def _check_values(executed: npt.NDArray[np.float64], rewards: npt.NDArray[np.float64], names: list[str]) -> None:
    # The observation may be NaN (a source still missing) and the policy action non-finite (a failed policy):
    # both are facts worth carrying, so they are not checked. What was sent to the robot and the rewards must be
    # numbers.
    bad = np.flatnonzero(~np.isfinite(executed))
    if bad.size:
        raise WireError(f"executed_action is non-finite at {bad.tolist()}: {executed[bad].tolist()}")
    bad = np.flatnonzero(~np.isfinite(rewards))
    if bad.size:
        raise WireError(f"reward terms {[names[i] for i in bad]} are non-finite: {rewards[bad].tolist()}")


def _exact_keys(where: str, obj: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in obj]
    unknown = sorted(k for k in obj if k not in keys)
    if missing or unknown:
        raise WireError(f"{where}: missing keys {missing}, unknown keys {unknown}")


def _int(name: str, value: Any, lo: int, hi: int) -> None:
    # bool is an int subclass in Python; `true` where a count belongs is a malformed message.
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value < hi:
        raise WireError(f"{name} must be an integer in [{lo}, {hi}), got {value!r}")


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise WireError(f"{name} must be true or false, got {value!r}")


def _optional_bool(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise WireError(f"{name} must be true, false or null, got {value!r}")


def _string(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise WireError(f"{name} must be a string, got {value!r}")


def _strings(name: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WireError(f"{name} must be a list of strings, got {value!r}")
