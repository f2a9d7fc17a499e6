"""A learner's announcement of a freshly exported, verified bundle (issue 15): what it travels as and how it is read.

The learner publishes it as `std_msgs/String` JSON on a latched topic; the policy node parses it with
`BundleAnnouncement.from_json` and hands it to its `BundleSwapper` (`ros_nodes/core/bundle_swap.py`), which loads
and verifies the bundle itself: the announcement is a claim, never trusted on its own (anyone on the ROS graph can
publish one). Parsing is strict — a missing, extra, mistyped or non-finite field is refused with a one-line
reason naming the field — so a malformed message is counted and reported, never half-read.

Stdlib only (no numpy, no torch, no rclpy): both the learner and the robot side import it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

FORMAT = 1
"""Version of the JSON layout (`format` key); another version is refused with both numbers."""
MAX_JSON_CHARS = 65536
"""Longest announcement accepted (a message from the network must not make the node parse megabytes)."""
MAX_METRICS = 64
"""Most metrics one announcement may carry."""

_HEX = frozenset("0123456789abcdef")


class AnnouncementError(ValueError):
    """A bundle announcement is malformed: missing/extra/mistyped/non-finite field, bad JSON, wrong format."""


def _fail(what: str) -> AnnouncementError:
    return AnnouncementError(f"bundle announcement refused: {what}")


@dataclass(frozen=True)
class BundleAnnouncement:
    """One exported bundle a learner offers to the robot (immutable; `metrics` is a read-only mapping)."""

    bundle_dir: str
    """Directory of the bundle (manifest.json + policy.onnx) as the robot's host sees it."""
    onnx_sha256: str
    """sha256 of the bundle's `policy.onnx`, 64 lowercase hex digits: the robot adopts the bundle only when the
    model it loads has exactly this hash."""
    training_step: int
    """Learner step at which the policy was exported (>= 0)."""
    run_id: str
    """The learner run that produced it (non-empty; e.g. the run directory's name)."""
    metrics: Mapping[str, float] = field(default_factory=dict, hash=False)
    """Recent learner metrics by namespaced name (`eval/success_rate`, `loss/critic`); every value finite."""
    announced_unix_s: float = 0.0
    """Wall-clock time of the announcement on the learner's host, s since the Unix epoch (finite, >= 0)."""

    def __post_init__(self) -> None:
        _check_str("bundle_dir", self.bundle_dir)
        _check_str("run_id", self.run_id)
        sha = self.onnx_sha256
        if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _HEX:
            raise _fail(f"onnx_sha256 must be 64 lowercase hex digits, got {sha!r}")
        step = self.training_step
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise _fail(f"training_step must be an integer >= 0, got {step!r}")
        _check_number("announced_unix_s", self.announced_unix_s, minimum=0.0)
        if not isinstance(self.metrics, Mapping):
            raise _fail(f"metrics must be an object of name -> number, got {type(self.metrics).__name__}")
        if len(self.metrics) > MAX_METRICS:
            raise _fail(f"metrics has {len(self.metrics)} entries, at most {MAX_METRICS} are accepted")
        metrics: dict[str, float] = {}
        for name, value in self.metrics.items():
            if not isinstance(name, str) or not name:
                raise _fail(f"metric names must be non-empty strings, got {name!r}")
            metrics[name] = _check_number(f"metrics[{name!r}]", value)
        # A private copy behind a read-only view: the frozen announcement cannot change under its reader.
        object.__setattr__(self, "metrics", MappingProxyType(metrics))
        object.__setattr__(self, "announced_unix_s", float(self.announced_unix_s))

    @classmethod
    def now(
        cls,
        bundle_dir: str,
        onnx_sha256: str,
        training_step: int,
        run_id: str,
        metrics: Mapping[str, float] | None = None,
    ) -> BundleAnnouncement:
        """An announcement stamped with the current wall-clock time (the learner's side)."""
        return cls(bundle_dir, onnx_sha256, training_step, run_id, dict(metrics or {}), time.time())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, with the `format` version."""
        return {
            "format": FORMAT,
            "bundle_dir": self.bundle_dir,
            "onnx_sha256": self.onnx_sha256,
            "training_step": self.training_step,
            "run_id": self.run_id,
            "metrics": dict(self.metrics),
            "announced_unix_s": self.announced_unix_s,
        }

    def to_json(self) -> str:
        """The `std_msgs/String` payload (compact, keys sorted, no NaN: every number is finite by construction)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> BundleAnnouncement:
        """Strictly parse a decoded JSON object.

        Raises:
            AnnouncementError: not an object, another `format`, a missing or unknown key, or a bad value (named).
        """
        if not isinstance(data, Mapping):
            raise _fail(f"expected a JSON object, got {type(data).__name__}")
        keys = {"format", "bundle_dir", "onnx_sha256", "training_step", "run_id", "metrics", "announced_unix_s"}
        missing = sorted(keys - set(data))
        if missing:
            raise _fail(f"missing field(s) {missing}")
        unknown = sorted(str(k) for k in set(data) - keys)
        if unknown:
            raise _fail(f"unknown field(s) {unknown}; expected exactly {sorted(keys)}")
        fmt = data["format"]
        if isinstance(fmt, bool) or fmt != FORMAT:
            raise _fail(f"format {fmt!r} is not supported (this reader reads format {FORMAT})")
        return cls(
            bundle_dir=data["bundle_dir"],
            onnx_sha256=data["onnx_sha256"],
            training_step=data["training_step"],
            run_id=data["run_id"],
            metrics=data["metrics"],
            announced_unix_s=data["announced_unix_s"],
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> BundleAnnouncement:
        """Strictly parse the `std_msgs/String` payload.

        Raises:
            AnnouncementError: too long, not JSON (NaN/Infinity literals included), or any `from_dict` reason.
        """
        if len(text) > MAX_JSON_CHARS:
            raise _fail(f"{len(text)} characters, at most {MAX_JSON_CHARS} are accepted")
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except AnnouncementError:
            raise
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise _fail(f"not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def _refuse_constant(name: str) -> float:
    """`json.loads` accepts NaN/Infinity literals by default; an announcement must not."""
    raise _fail(f"non-finite number {name} in the JSON")


def _check_str(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{name} must be a non-empty string, got {value!r}")


def _check_number(name: str, value: Any, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except OverflowError:  # an integer beyond the float range
        out = math.inf
    if not math.isfinite(out):
        raise _fail(f"{name} must be finite, got {value!r}")
    if minimum is not None and out < minimum:
        raise _fail(f"{name} must be >= {minimum:g}, got {value!r}")
    return out
