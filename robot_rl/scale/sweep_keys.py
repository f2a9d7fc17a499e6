"""Reading a sweep's `--grid` and `--space` options: which field a key names, what its values are, which Ray Tune
distribution a `DIST:ARGS` is.

An override names a field as `algo.FIELD`, `train.FIELD` or a bare `FIELD` (the two configs share no field names;
`robot-rl train` refuses algorithms whose fields clash). Values are JSON where they parse (`1e-3`, `true`, `[64, 64]`),
plain strings otherwise (`crossq`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from robot_rl.train.config import TrainConfig

FIXED_TRAIN_FIELDS = ("seed", "run_name", "out_dir", "progress", "torch_threads")
"""TrainConfig fields the sweep sets for each trial itself (a seed comes from `--seeds`)."""
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
"""Distributions `--space` accepts (Ray Tune's `tune.uniform`, `tune.loguniform`, `tune.randint`, `tune.choice`)."""


def parse_value(text: str) -> Any:
    """`text` as JSON where it parses (`1e-3`, `true`, `[64,64]`, `null`), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()


def parse_values(text: str, where: str) -> list[Any]:
    """A value list: a JSON list (`[[64,64],[256,256]]`: values that hold commas themselves) or `V1,V2,...`."""
    text = text.strip()
    if text.startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"{where}: {text!r} starts like a JSON list but does not parse as one") from None
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}: {text!r} must be a non-empty JSON list of values")
        return values
    values = [parse_value(v) for v in text.split(",")]
    if any(v == "" for v in values):
        raise ValueError(f"{where}: empty value in {text!r}")
    return values


def _split(spec: str, flag: str, example: str) -> tuple[str, str]:
    key, sep, raw = spec.partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise ValueError(f"{flag} {spec!r}: expected KEY=VALUES, e.g. {flag} {example}")
    return key.strip(), raw.strip()


def canonical_key(key: str, algo_cls: type) -> str:
    """`critic-lr` / `critic_lr` / `algo.critic_lr` → `algo.critic_lr`; raises ValueError for unknown or sweep-owned
    fields."""
    section, dot, name = key.replace("-", "_").partition(".")
    if not dot:
        section, name = "", section
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    algo_fields = {f.name for f in dataclasses.fields(algo_cls)}
    if section not in ("", "train", "algo"):
        raise ValueError(f"{key!r}: a key is algo.FIELD, train.FIELD or FIELD, not {section}.FIELD")
    if section in ("", "train") and name in train_fields:
        if name in FIXED_TRAIN_FIELDS:
            hint = "use --seeds" if name == "seed" else "the sweep sets it for every trial"
            raise ValueError(f"{key!r} cannot be swept ({hint})")
        return f"train.{name}"
    if section in ("", "algo") and name in algo_fields:
        return f"algo.{name}"
    fields = sorted(algo_fields) if section == "algo" else sorted(train_fields) if section == "train" else []
    known = f"; {section} fields: {', '.join(fields)}" if fields else " (neither a TrainConfig nor an algorithm field)"
    raise ValueError(f"unknown sweep key {key!r}{known}")


def parse_grid(specs: tuple[str, ...], algo_cls: type) -> dict[str, list[Any]]:
    """`--grid KEY=V1,V2` options → canonical key → values (in the given order)."""
    out: dict[str, list[Any]] = {}
    for spec in specs:
        key, raw = _split(spec, "--grid", "algo.critic_lr=1e-3,3e-4")
        name = canonical_key(key, algo_cls)
        if name in out:
            raise ValueError(f"--grid {spec!r}: {name} is already a grid axis")
        out[name] = parse_values(raw, f"--grid {spec!r}")
    return out


def parse_space(specs: tuple[str, ...], algo_cls: type) -> dict[str, str]:
    """`--space KEY=DIST:ARGS` options → canonical key → `DIST:ARGS` (checked by building the distribution)."""
    out: dict[str, str] = {}
    for spec in specs:
        key, raw = _split(spec, "--space", "algo.critic_lr=loguniform:1e-4,1e-2")
        name = canonical_key(key, algo_cls)
        if name in out:
            raise ValueError(f"--space {spec!r}: {name} is given twice")
        make_domain(raw, f"--space {spec!r}")  # fail on a bad distribution now, not after Ray started
        out[name] = raw
    return out


def make_domain(raw: str, where: str) -> Any:
    """Ray Tune's distribution for `DIST:ARGS` (Ray is imported here: only random search needs it)."""
    from robot_rl.scale.ray_env import require_tune

    tune = require_tune()
    dist, sep, args = raw.partition(":")
    if not sep or dist not in DISTRIBUTIONS:
        raise ValueError(f"{where}: expected DIST:ARGS with DIST one of {', '.join(DISTRIBUTIONS)}")
    values = parse_values(args, where)
    if dist == "choice":
        return tune.choice(values)
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{where}: {dist} needs two numbers LOW,HIGH, got {args!r}")
    low, high = values
    if not low < high:
        raise ValueError(f"{where}: {dist} needs LOW < HIGH, got {low}, {high}")
    if dist == "randint":
        if not (isinstance(low, int) and isinstance(high, int)):
            raise ValueError(f"{where}: randint needs integers, got {args!r}")
        return tune.randint(low, high)
    if dist == "loguniform":
        if low <= 0:
            raise ValueError(f"{where}: loguniform needs LOW > 0, got {low}")
        return tune.loguniform(float(low), float(high))
    return tune.uniform(float(low), float(high))


def plain_value(value: Any) -> Any:
    """A numpy scalar drawn by Tune as a plain Python value (JSON-ready)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, (list, tuple, dict)) else value


def fit_value(hint: Any, value: Any) -> Any:
    """An int given for a float field becomes a float (`1` for `gamma`), so configs stay typed."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if isinstance(value, int) and not isinstance(value, bool) and float in args and int not in args:
        return float(value)
    return value
