"""The stream's wire format: exact round trips, and every malformed input refused with one error type."""

from __future__ import annotations

import array
import json
import struct
from typing import Any

import numpy as np
import pytest

from robot_rl.data.step_record import StepRecord
from robot_rl.hil.sender import StreamSender
from robot_rl.hil.wire import (
    MAGIC,
    WIRE_VERSION,
    EpisodeEndInfo,
    StreamMessage,
    WireError,
    decode,
    encode,
    new_run_id,
)
from ros_nodes.core.episode_session import EpisodeEnd, EpisodeStart

SHA = "ab" * 32
PREFIX = struct.Struct("<4sBI")


def _record(**over: Any) -> StepRecord:
    fields: dict[str, Any] = {
        "step": 7,
        "stamp_ns": 2**63 + 5,  # beyond int64: the MCAP stamps are uint64
        "observation": np.array([0.1, -2.5e-300, np.nan, 1e300, -0.0], np.float64),
        "policy_action": np.array([np.nan, np.inf], np.float64),
        "executed_action": np.array([np.nextafter(1.0, 2.0), -0.3], np.float64),
        "reward_terms": {"success": 0.1, "rlif": -1.0, "shaping": 1e-17},
        "intervention": True,
        "safety_reasons": ("rate_limit: joint 0 clipped", "ünïcode ✓", "\ud800 lone surrogate"),
        "terminated": True,
        "truncated": False,
        "intervention_onset": True,
        "intervention_offset": False,
        "source": "human",
        "safety_held": False,
        "safety_changed_by": ("rate_limit",),
        "is_success": None,
        "replanned": True,
        "policy_error": "",
        "chunk_index": 3,
        "chunk_step": -1,
    }
    fields.update(over)
    return StepRecord(**fields)


def _message(**over: Any) -> StreamMessage:
    rec = over.pop("record", None) or _record()
    fields: dict[str, Any] = {"run_id": "run-1", "seq": 41, "episode": 2, "bundle_sha256": SHA, "record": rec}
    fields.update(over)
    return StreamMessage(**fields)


def _assert_same(a: StreamMessage, b: StreamMessage) -> None:
    assert (a.run_id, a.seq, a.episode, a.bundle_sha256, a.episode_end) == (
        b.run_id,
        b.seq,
        b.episode,
        b.bundle_sha256,
        b.episode_end,
    )
    ra, rb = a.record, b.record
    for name in ("observation", "policy_action", "executed_action"):
        x = np.asarray(getattr(ra, name), np.float64)
        y = getattr(rb, name)
        assert y.dtype == np.float64 and x.tobytes() == y.tobytes(), name  # bit for bit, NaN payloads included
    assert list(ra.reward_terms.items()) == list(rb.reward_terms.items())  # values and order
    for name in StepRecord.__dataclass_fields__:
        if name not in ("observation", "policy_action", "executed_action", "reward_terms"):
            assert getattr(ra, name) == getattr(rb, name), name


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    _, _, n = PREFIX.unpack_from(data)
    return json.loads(data[PREFIX.size : PREFIX.size + n]), data[PREFIX.size + n :]


def _join(header: dict[str, Any] | bytes, payload: bytes, version: int = WIRE_VERSION, magic: bytes = MAGIC) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return PREFIX.pack(magic, version, len(text)) + text + payload


# ----------------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("is_success", [None, True, False])
def test_round_trip_is_exact(is_success: bool | None) -> None:
    end = EpisodeEndInfo(steps=8, terminated=True, truncated=False, is_success=is_success, ended_by="robot",
                         intervention_steps=3)  # fmt: skip
    msg = _message(record=_record(is_success=is_success), episode_end=end)
    data = encode(msg)
    _assert_same(msg, decode(data, obs_dim=5, act_dim=2))
    assert encode(decode(data)) == data  # canonical: re-encoding gives the same bytes


def test_nan_payload_bits_and_float32_inputs_survive() -> None:
    odd_nan = np.frombuffer(struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF), np.float64)[0]
    rec = _record(
        observation=np.array([1.1, 2.2, 3.3], np.float32),  # what ControlStep produces
        policy_action=np.array([odd_nan, -np.nan]),
        terminated=False,
    )
    out = decode(encode(_message(record=rec)))
    assert out.record.observation.tobytes() == np.array([1.1, 2.2, 3.3], np.float32).astype(np.float64).tobytes()
    assert out.record.policy_action.tobytes() == np.array([odd_nan, -np.nan]).tobytes()
    assert out.episode_end is None and out.record.is_success is None


def test_any_buffer_decodes_and_run_ids_are_fresh() -> None:
    data = encode(_message())
    for buf in (bytearray(data), memoryview(data), array.array("B", data)):  # rclpy gives array('B') for uint8[]
        _assert_same(_message(), decode(buf))
    assert new_run_id() != new_run_id()


def test_empty_reward_terms_and_plain_step() -> None:
    rec = _record(reward_terms={}, terminated=False, safety_reasons=(), safety_changed_by=(), source="")
    _assert_same(_message(record=rec, bundle_sha256=""), decode(encode(_message(record=rec, bundle_sha256=""))))


# ------------------------------------------------------------------------------------------ malformed input


def _good() -> bytes:
    return encode(_message())


def test_every_truncation_is_refused() -> None:
    data = _good()
    for n in range(len(data)):
        with pytest.raises(WireError):
            decode(data[:n])


def test_random_corruption_never_escapes_as_another_error() -> None:
    rng = np.random.default_rng(0)
    data = _good()
    outcomes = {"refused": 0, "decoded": 0}
    for _ in range(1500):
        buf = bytearray(data)
        kind = rng.integers(4)
        if kind == 0:  # flip a few bits anywhere
            for i in rng.integers(0, len(buf), size=rng.integers(1, 4)):
                buf[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # overwrite a slice with garbage
            i = int(rng.integers(0, len(buf)))
            buf[i : i + 8] = rng.integers(0, 256, size=8, dtype=np.uint8).tobytes()
        elif kind == 2:  # insert or delete bytes
            i = int(rng.integers(0, len(buf)))
            buf = buf[:i] + buf[i + int(rng.integers(1, 5)) :] if rng.random() < 0.5 else buf[:i] + b"\x00" + buf[i:]
        else:  # pure noise with our magic and version in front
            buf = (
                bytearray(MAGIC + bytes([WIRE_VERSION]))
                + rng.integers(0, 256, size=int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
            )
        try:
            out = decode(bytes(buf), obs_dim=5, act_dim=2)
        except WireError as exc:
            assert exc.reason and str(exc).startswith("stream message rejected: ")
            outcomes["refused"] += 1
        else:
            # A flip inside a float may leave a valid message; it must then honour the contract.
            assert np.all(np.isfinite(out.record.executed_action))
            assert not (out.record.terminated and out.record.truncated)
            outcomes["decoded"] += 1
    assert outcomes["refused"] > 1000


def _mutated(mutate: Any) -> bytes:
    header, payload = _split(_good())
    mutate(header)
    return _join(header, payload)


def _set(path: str, value: Any) -> Any:
    def mutate(h: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        for p in parents:
            h = h[p]
        h[leaf] = value

    return mutate


def _drop(key: str) -> Any:
    return lambda h: h.pop(key)


def _nan_at(index: int) -> bytes:
    header, payload = _split(_good())
    values = np.frombuffer(payload, "<f8").copy()
    values[index] = np.nan
    return _join(header, values.tobytes())


CASES: list[tuple[str, Any, str]] = [
    ("not bytes", lambda: 12345, "expected bytes"),
    ("empty", lambda: b"", "truncated"),
    ("bad magic", lambda: _join(_split(_good())[0], _split(_good())[1], magic=b"XXXX"), "bad magic"),
    ("future version", lambda: _join(*_split(_good()), version=2), "wire version 2 is not supported"),
    ("version 0", lambda: _join(*_split(_good()), version=0), "wire version 0"),
    ("huge header length", lambda: PREFIX.pack(MAGIC, 1, 2**32 - 1) + b"{}", "exceeds"),
    ("header cut short", lambda: PREFIX.pack(MAGIC, 1, 500) + b"{}", "truncated"),
    ("trailing byte", lambda: _good() + b"\x00", "payload is"),
    ("missing float", lambda: _good()[:-8], "payload is"),
    ("not json", lambda: _join(b"{not json", b""), "not JSON"),
    ("not utf-8", lambda: _join(b'{"a":"\xff"}', b""), "not UTF-8"),
    ("json array", lambda: _join(b"[1,2]", b""), "must be a JSON object"),
    ("NaN token", lambda: _join(_good_text().replace(b'"seq":41', b'"seq":NaN'), _split(_good())[1]), "NaN"),
    (
        "Infinity token",
        lambda: _join(_good_text().replace(b'"seq":41', b'"seq":-Infinity'), _split(_good())[1]),
        "Infinity",
    ),
    (
        "duplicate key",
        lambda: _join(_good_text().replace(b'"seq":41', b'"seq":41,"seq":42'), _split(_good())[1]),
        "repeats keys",
    ),
    ("deep nesting", lambda: _join(b"[" * 30000 + b"]" * 30000, b""), "nests too deeply"),
    ("unknown key", lambda: _mutated(_set("extra", 1)), "unknown keys ['extra']"),
    ("missing key", lambda: _mutated(_drop("seq")), "missing keys ['seq']"),
    ("unknown record key", lambda: _mutated(_set("record.velocity", 1)), "record: missing keys [], unknown keys"),
    ("negative seq", lambda: _mutated(_set("seq", -1)), "seq must be an integer"),
    ("float seq", lambda: _mutated(_set("seq", 1.0)), "seq must be an integer"),
    ("bool as int", lambda: _mutated(_set("episode", True)), "episode must be an integer"),
    ("huge seq", lambda: _mutated(_set("seq", 2**70)), "seq must be an integer"),
    ("empty run id", lambda: _mutated(_set("run_id", "")), "run_id must be"),
    ("bad sha", lambda: _mutated(_set("bundle_sha256", "XYZ")), "bundle_sha256"),
    ("zero obs dim", lambda: _mutated(_set("obs_dim", 0)), "obs_dim must be"),
    ("int as bool", lambda: _mutated(_set("record.intervention", 1)), "record.intervention must be true or false"),
    ("reasons not strings", lambda: _mutated(_set("record.safety_reasons", [1])), "record.safety_reasons"),
    ("chunk below -1", lambda: _mutated(_set("record.chunk_index", -2)), "record.chunk_index"),
    ("both flags", lambda: _mutated(_set("record.truncated", True)), "both terminated and truncated"),
    ("repeated term", lambda: _mutated(_set("reward_terms", ["a", "a", "b"])), "repeat"),
    (
        "more terms than values",
        lambda: _mutated(_set("reward_terms", ["success", "rlif", "shaping", "x"])),
        "payload is",
    ),
    ("end without flags", lambda: _end_on(terminated=False), "must ride on the episode's last step"),
    ("end flags differ", lambda: _end_on(terminated=True, end_truncated=True), "must ride on the episode's last"),
    ("end not an object", lambda: _mutated(_set("episode_end", [1])), "episode_end must be null or an object"),
    ("NaN executed action", lambda: _nan_at(5 + 2), "executed_action is non-finite at [0]"),
    ("NaN reward term", lambda: _nan_at(5 + 4 + 1), "reward terms ['rlif'] are non-finite"),
]


def _good_text() -> bytes:
    data = _good()
    _, _, n = PREFIX.unpack_from(data)
    return data[PREFIX.size : PREFIX.size + n]


def _end_on(*, terminated: bool, end_truncated: bool = False) -> bytes:
    def mutate(h: dict[str, Any]) -> None:
        h["record"]["terminated"] = terminated
        h["episode_end"] = {"steps": 8, "terminated": True, "truncated": end_truncated, "is_success": None,
                            "intervention_steps": 0, "ended_by": "robot"}  # fmt: skip
        if end_truncated:
            h["episode_end"]["terminated"] = False

    return _mutated(mutate)


@pytest.mark.parametrize(("name", "make", "reason"), CASES, ids=[c[0] for c in CASES])
def test_malformed_input_is_refused_with_its_reason(name: str, make: Any, reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode(make(), obs_dim=5, act_dim=2)
    assert reason in info.value.reason, info.value.reason
    assert isinstance(info.value, ValueError)


def test_sizes_must_match_the_receivers() -> None:
    data = _good()
    with pytest.raises(WireError, match="observation has 5 values, expected 4"):
        decode(data, obs_dim=4)
    with pytest.raises(WireError, match="action has 2 values, expected 3"):
        decode(data, act_dim=3)


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"executed_action": np.array([np.nan, 0.0])}, "executed_action is non-finite"),
        ({"reward_terms": {"x": np.inf}}, "reward terms ['x'] are non-finite"),
        ({"policy_action": np.zeros(3)}, "policy_action has 3 values, executed_action 2"),
        ({"terminated": True, "truncated": True}, "both terminated and truncated"),
        ({"stamp_ns": -1}, "record.stamp_ns"),
        ({"reward_terms": {"x": "high"}}, "cannot encode"),
    ],
)
def test_encode_refuses_what_decode_would(over: dict[str, Any], reason: str) -> None:
    with pytest.raises(WireError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        encode(_message(record=_record(**over)))


# ----------------------------------------------------------------------------------------------- the sender


def test_sender_numbers_steps_and_attaches_the_episode_end() -> None:
    sender = StreamSender(bundle_sha256=SHA)
    first = _record(step=0, terminated=False)
    last = _record(step=1, terminated=True)
    end = EpisodeEnd(index=0, steps=2, terminated=True, truncated=False, is_success=True, intervention_steps=1,
                     ended_by="robot")  # fmt: skip
    assert sender.messages([EpisodeStart(0)]) == []
    out = sender.messages([first]) + sender.messages([last, end, EpisodeStart(1), _record(step=0, terminated=False)])
    assert [(m.seq, m.episode, m.record.step) for m in out] == [(0, 0, 0), (1, 0, 1), (2, 1, 0)]
    assert out[0].episode_end is None and out[2].episode_end is None
    assert out[1].episode_end == EpisodeEndInfo(2, True, False, True, 1, "robot")
    assert {m.run_id for m in out} == {sender.run_id} and all(m.bundle_sha256 == SHA for m in out)
    # An episode that ended before its first step sends nothing.
    empty = EpisodeEnd(index=1, steps=0, terminated=False, truncated=True, is_success=None, intervention_steps=0,
                       ended_by="halt")  # fmt: skip
    assert sender.messages([empty]) == []
    for m in out:
        _assert_same(m, decode(encode(m)))
