"""Name → (config class, algorithm class), so the CLI and checkpoints can rebuild any algorithm."""

from __future__ import annotations

from typing import Any

from robot_rl.algos.base import Algorithm
from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.algos.td3 import TD3, TD3Config
from robot_rl.core.config import config_from_json
from robot_rl.core.specs import PolicySpec

ALGORITHMS: dict[str, tuple[type, type]] = {"sac": (SACConfig, SAC), "td3": (TD3Config, TD3)}


def _lookup(name: str) -> tuple[type, type]:
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    return ALGORITHMS[name]


def make_algorithm(name: str, spec: PolicySpec, cfg: Any) -> Algorithm:
    cfg_cls, algo_cls = _lookup(name)
    if not isinstance(cfg, cfg_cls):
        raise TypeError(f"{name} needs a {cfg_cls.__name__}, got {type(cfg).__name__}")
    algo: Algorithm = algo_cls(spec, cfg)
    return algo


def algo_config_from_json(name: str, data: dict[str, Any]) -> Any:
    return config_from_json(_lookup(name)[0], data)
