"""Frozen-dataclass configs to and from JSON (no pickles, no eval)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def config_to_json(cfg: Any) -> dict[str, Any]:
    """A dataclass config as JSON-ready data (tuples → lists, paths → strings)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        return v

    out = conv(cfg)
    if not isinstance(out, dict):
        raise TypeError(f"expected a dataclass instance, got {type(cfg).__name__}")
    return out


def config_from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a dataclass config from `config_to_json` output; unknown keys are an error."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    kwargs = {k: _coerce(hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(args[0], value) if len(args) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return config_from_json(hint, value)  # type: ignore[arg-type]
    if origin is tuple and isinstance(value, list):
        tuple_args = typing.get_args(hint)
        inner = tuple_args[0] if tuple_args else Any
        return tuple([_coerce(inner, v) for v in value])
    if hint is Path and isinstance(value, str):
        return Path(value)
    return value
