"""Name → (config class, algorithm class, presets), so the CLI, checkpoints and exports can rebuild any algorithm.

An algorithm is registered by calling `register_algorithm` when its module is imported. The built-in ones
(`robot_rl.algos.<name>`) are registered here on first lookup; a plug-in lives in any importable module and is
found through

- the entry-point group `robot_rl.algorithms` (the value is a module, or a zero-argument function that registers),
- `robot-rl --plugin MODULE` (repeatable) or `ROBOT_RL_PLUGINS=mod_a,mod_b`, which import those modules.

The registering module is recorded (`AlgorithmEntry.module`, saved as `algo_module` in a run's config.json), so a
resumed or exported run re-imports it without being told again.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

from robot_rl.algos.base import Algorithm
from robot_rl.core.config import config_from_json
from robot_rl.core.specs import PolicySpec

ENTRY_POINT_GROUP = "robot_rl.algorithms"
"""Entry-point group a third-party distribution registers its algorithms under."""
PLUGINS_ENV_VAR = "ROBOT_RL_PLUGINS"
"""Comma-separated modules imported before any algorithm is looked up."""


@dataclass(frozen=True)
class AlgorithmEntry:
    """One registered algorithm."""

    name: str
    """Registry name: `robot-rl train <name>`, `config.json["algo"]`."""
    config_cls: type
    """Frozen config dataclass (its field docstrings are the CLI help)."""
    algo_cls: type
    """`algo_cls(spec: PolicySpec, cfg: config_cls)` satisfies `robot_rl.algos.base.Algorithm`."""
    presets: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    """Recipe name → zero-argument factory of a config (`--recipe NAME`); the first one is the default."""
    module: str = ""
    """Module whose import registers the algorithm (re-imported on resume and export)."""
    needs_dataset: bool = False
    """True for learners that only imitate recorded data (bc): online-only training is refused, since cloning its
    own actions teaches nothing."""

    @property
    def default_preset(self) -> str:
        """The recipe used without `--recipe` ("" when the algorithm has none)."""
        return next(iter(self.presets), "")

    def default_config(self, preset: str = "") -> Any:
        """The config of recipe `preset` (the default recipe, or `config_cls()`, when empty)."""
        name = preset or self.default_preset
        if not name:
            return self.config_cls()
        if name not in self.presets:
            raise ValueError(f"unknown {self.name.upper()} recipe {name!r}; choose one of {list(self.presets)}")
        cfg = self.presets[name]()
        if not isinstance(cfg, self.config_cls):
            raise TypeError(f"{self.name} recipe {name!r} built a {type(cfg).__name__}, not a {self.config_cls}")
        return cfg


_REGISTRY: dict[str, AlgorithmEntry] = {}
_loaded: set[str] = set()
"""Discovery steps already done ("builtins", "env", "entry_points")."""


def register_algorithm(
    name: str,
    config_cls: type,
    algo_cls: type,
    presets: Mapping[str, Callable[[], Any]] | None = None,
    module: str | None = None,
    needs_dataset: bool = False,
) -> AlgorithmEntry:
    """Register `algo_cls` (configured by `config_cls`) as `name`; returns the entry.

    `module` defaults to the caller's module. Registering the same name again from a re-imported module replaces
    the entry; registering a different algorithm under a taken name is an error.
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum() or name.startswith("-"):
        raise ValueError(f"algorithm name must be a plain word (letters, digits, _ or -), got {name!r}")
    if not (dataclasses.is_dataclass(config_cls) and isinstance(config_cls, type)):
        raise TypeError(f"{name}: config_cls must be a dataclass type, got {config_cls!r}")
    if module is None:
        module = str(sys._getframe(1).f_globals.get("__name__", ""))  # the module doing the registering
    entry = AlgorithmEntry(name, config_cls, algo_cls, MappingProxyType(dict(presets or {})), module, needs_dataset)
    old = _REGISTRY.get(name)
    if old is not None and _qualname(old.algo_cls) != _qualname(algo_cls):
        raise ValueError(
            f"algorithm name {name!r} is taken by {_qualname(old.algo_cls)} (from {old.module or '?'}); "
            f"cannot register {_qualname(algo_cls)} under it"
        )
    _REGISTRY[name] = entry
    return entry


def load_plugins(modules: Iterable[str]) -> None:
    """Import plug-in modules (each registers its algorithms on import); raises ValueError naming a bad one."""
    for mod in modules:
        mod = mod.strip()
        if not mod:
            continue
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            raise ValueError(f"cannot import algorithm plug-in module {mod!r}: {exc}") from None


def registered() -> Mapping[str, AlgorithmEntry]:
    """Every algorithm: built-ins, `ROBOT_RL_PLUGINS` modules, entry points and modules imported so far."""
    _discover(entry_point_names=True)
    return MappingProxyType(_REGISTRY)


def get_algorithm(name: str, module: str = "") -> AlgorithmEntry:
    """The entry registered as `name`, importing `module` (e.g. a run's `algo_module`) first when needed.

    Raises:
        ValueError: no algorithm of that name; the message lists the registered ones.
    """
    _discover(entry_point_names=False)
    if name not in _REGISTRY and module and module != "__main__":
        load_plugins([module])
    if name not in _REGISTRY:
        _discover(entry_point_names=True)
    if name not in _REGISTRY:
        where = f" (its module {module!r} did not register it)" if module else ""
        raise ValueError(
            f"unknown algorithm {name!r}{where}; registered: {sorted(_REGISTRY)} "
            f"(plug-ins: --plugin MODULE, ${PLUGINS_ENV_VAR} or the {ENTRY_POINT_GROUP!r} entry-point group)"
        )
    return _REGISTRY[name]


def make_algorithm(name: str, spec: PolicySpec, cfg: Any, module: str = "") -> Algorithm:
    """Build algorithm `name` for `spec` with config `cfg` (which must be its config class)."""
    entry = get_algorithm(name, module)
    if not isinstance(cfg, entry.config_cls):
        raise TypeError(f"{name} needs a {entry.config_cls.__name__}, got {type(cfg).__name__}")
    algo: Algorithm = entry.algo_cls(spec, cfg)
    return algo


def algo_config_from_json(name: str, data: dict[str, Any], module: str = "") -> Any:
    """Rebuild algorithm `name`'s config from its `config_to_json` form."""
    return config_from_json(get_algorithm(name, module).config_cls, data)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _register_builtins() -> None:
    from robot_rl.algos.bc import BC, BCConfig
    from robot_rl.algos.diffusion import Diffusion, DiffusionConfig
    from robot_rl.algos.dsrl import DSRL, DSRLConfig
    from robot_rl.algos.flow import Flow, FlowConfig
    from robot_rl.algos.lac import LAC, LACConfig
    from robot_rl.algos.meanflow import MeanFlow, MeanFlowConfig
    from robot_rl.algos.residual import ResidualConfig, ResidualSAC, ResidualSACConfig, ResidualTD3
    from robot_rl.algos.sac import SAC, SACConfig
    from robot_rl.algos.td3 import TD3, TD3Config

    sac_presets = {name: partial(SACConfig.preset, name) for name in ("classic", "crossq")}
    register_algorithm("sac", SACConfig, SAC, presets=sac_presets, module="robot_rl.algos.sac")
    register_algorithm("td3", TD3Config, TD3, module="robot_rl.algos.td3")
    register_algorithm("bc", BCConfig, BC, module="robot_rl.algos.bc", needs_dataset=True)
    register_algorithm("diffusion", DiffusionConfig, Diffusion, module="robot_rl.algos.diffusion", needs_dataset=True)
    register_algorithm("flow", FlowConfig, Flow, module="robot_rl.algos.flow", needs_dataset=True)
    register_algorithm("meanflow", MeanFlowConfig, MeanFlow, module="robot_rl.algos.meanflow", needs_dataset=True)
    register_algorithm("residual", ResidualConfig, ResidualTD3, module="robot_rl.algos.residual")
    register_algorithm("residual_sac", ResidualSACConfig, ResidualSAC, module="robot_rl.algos.residual")
    register_algorithm("dsrl", DSRLConfig, DSRL, module="robot_rl.algos.dsrl")
    register_algorithm("lac", LACConfig, LAC, module="robot_rl.algos.lac")


def _discover(entry_point_names: bool) -> None:
    if "builtins" not in _loaded:
        _loaded.add("builtins")
        _register_builtins()
    if "env" not in _loaded:
        _loaded.add("env")
        load_plugins(os.environ.get(PLUGINS_ENV_VAR, "").split(","))
    if entry_point_names and "entry_points" not in _loaded:
        _loaded.add("entry_points")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                if callable(obj) and not isinstance(obj, type):
                    obj()  # `module:function` entry points register when called
            except Exception as exc:  # a broken third-party plug-in must not stop the built-in algorithms
                warnings.warn(f"algorithm entry point {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)
