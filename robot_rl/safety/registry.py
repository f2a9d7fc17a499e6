"""Links by name: the built-ins, `register_link`, the `robot_rl.safety_links` entry points, "module:Class" paths.

A config's `links` entry is resolved in that order, so a new link plugs in without editing the chain:

    register_link("joint_speed_scale", SpeedScale)          # in code, or
    [project.entry-points."robot_rl.safety_links"]          # in a package's pyproject.toml, or
    joint_speed_scale = "my_pkg.links:SpeedScale"
    links: [..., "my_pkg.links:SpeedScale", joint_limits, workspace]   # straight in the YAML
"""

from __future__ import annotations

from collections.abc import Callable

from robot_rl.core.plugins import entry_point_names, import_object, load_entry_point
from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.link import LINK_KINDS, Link
from robot_rl.safety.links import (
    CommandWatchdogLink,
    EStopLink,
    JointLimitsLink,
    NonFiniteLink,
    ObservationWatchdogLink,
    PlausibilityLink,
    ShapeLink,
    WorkspaceLink,
)
from robot_rl.safety.links.cbf import CbfLink
from robot_rl.safety.links.lyapunov import LyapunovLink

LinkFactory = Callable[[SafetyConfig, object], Link]
"""(config, kinematics or None) → a link; a `Link` class whose `__init__(config, kinematics)` is one."""

ENTRY_POINT_GROUP = "robot_rl.safety_links"
"""Installed packages add links under this entry-point group (name → "module:attribute")."""

BUILTIN_LINKS: dict[str, LinkFactory] = {
    "estop": EStopLink,
    "observation_watchdog": ObservationWatchdogLink,
    "command_watchdog": CommandWatchdogLink,
    "plausibility": PlausibilityLink,
    "shape": ShapeLink,
    "non_finite": NonFiniteLink,
    "joint_limits": JointLimitsLink,
    "workspace": WorkspaceLink,
    "lyapunov": LyapunovLink,
    "cbf": CbfLink,
}
"""The links every chain is built from (their names are reserved)."""

_REGISTERED: dict[str, LinkFactory] = {}


def register_link(name: str, factory: LinkFactory, *, replace: bool = False) -> None:
    """Make `name` usable in a config's `links`.

    Raises:
        ValueError: an empty or reserved name, a name with ":" (import paths), or one already registered
            (pass replace=True to re-register it, e.g. when a module is reloaded).
    """
    if not name or ":" in name or name == "held":
        raise ValueError(f"link name {name!r} must be non-empty, without ':' and not 'held'")
    if name in BUILTIN_LINKS:
        raise ValueError(f"link name {name!r} is a built-in link; choose another name")
    if name in _REGISTERED and not replace and _REGISTERED[name] is not factory:
        raise ValueError(f"link {name!r} is already registered ({_REGISTERED[name]!r}); pass replace=True")
    if not callable(factory):
        raise ValueError(f"factory for link {name!r} must be callable, got {factory!r}")
    _REGISTERED[name] = factory


def unregister_link(name: str) -> None:
    """Forget a registered link (tests); unknown names are ignored."""
    _REGISTERED.pop(name, None)


def link_factory(name: str) -> LinkFactory:
    """The factory for `name`: built-in, registered, entry point, or "module:attribute".

    Raises:
        ValueError: nothing by that name, or an import path that does not import (the message says which).
    """
    if name in BUILTIN_LINKS:
        return BUILTIN_LINKS[name]
    if name in _REGISTERED:
        return _REGISTERED[name]
    installed = load_entry_point(ENTRY_POINT_GROUP, name)
    if installed is not None:
        return installed  # type: ignore[no-any-return]
    if ":" in name:
        factory = import_object(name, "safety link")
        if not callable(factory):
            raise ValueError(f"safety link {name!r}: {factory!r} is not callable (a Link class or factory)")
        return factory  # type: ignore[no-any-return]
    known = sorted({*BUILTIN_LINKS, *_REGISTERED, *entry_point_names(ENTRY_POINT_GROUP)})
    raise ValueError(
        f"unknown safety link {name!r}; known: {known}, or give an import path 'package.module:Class' "
        f"(or register it with register_link / the {ENTRY_POINT_GROUP!r} entry-point group)"
    )


def needs_kinematics(config: SafetyConfig) -> bool:
    """True when the config's chain needs the robot's kinematics: a workspace box, or a link whose class says
    `needs_kinematics = True` (e.g. `cbf`). The node, `eval --safety` and `train --safety` load the URDF chain
    exactly then, and the chain refuses kinematics nothing would use.

    Raises:
        ValueError: a link name that does not resolve (the message lists the known ones).
    """
    return config.has_workspace or any(
        bool(getattr(link_factory(name), "needs_kinematics", False)) for name in config.links
    )


def make_link(name: str, config: SafetyConfig, kinematics: object = None) -> Link:
    """Build the link `name` and check it keeps the `Link` contract.

    Raises:
        ValueError: unknown name, or the object built is not a `Link` (missing methods, unknown kind, no keys).
    """
    link = link_factory(name)(config, kinematics)
    if not isinstance(link, Link):
        missing = [m for m in ("name", "kind", "keys", "filter", "commit", "record", "counters", "last_reasons",
                               "reset") if not hasattr(link, m)]  # fmt: skip
        raise ValueError(f"safety link {name!r} built {link!r}, which is not a Link (missing {missing})")
    if link.kind not in LINK_KINDS:
        raise ValueError(f"safety link {name!r} has kind {link.kind!r}; expected one of {list(LINK_KINDS)}")
    if not link.name or not link.keys or "held" in link.keys:
        raise ValueError(f"safety link {name!r} needs a name and counter keys (not 'held'), got {link.keys!r}")
    return link
