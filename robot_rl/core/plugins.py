"""Finding a plug-in by name: one import-path parser and one entry-point lookup for every extension point.

Safety links (`robot_rl.safety_links`), reward hooks (`robot_rl.reward_hooks`) and algorithms
(`robot_rl.algorithms`) are all named either by an installed distribution's entry point or by an import path
`"package.module:attribute"`; both forms are resolved here, so each extension point only adds its own checks.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any


def import_object(path: str, what: str) -> Any:
    """The attribute an import path `"package.module:attribute"` names.

    Raises:
        ValueError: no ":" in `path`, the module does not import, or it lacks the attribute; the message starts
            with `what` (e.g. "safety link") and the path.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{what} {path!r}: an import path is 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{what} {path!r}: cannot import module {module_name!r} ({exc})") from None
    if not hasattr(module, attr):
        raise ValueError(f"{what} {path!r}: module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def entry_point_names(group: str) -> list[str]:
    """Names installed distributions register under entry-point `group`, sorted."""
    return sorted(ep.name for ep in entry_points(group=group))


def load_entry_point(group: str, name: str) -> Any | None:
    """The object an installed distribution registers as `name` in entry-point `group`, or None when none does."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    return None
