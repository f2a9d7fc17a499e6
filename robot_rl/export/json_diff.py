"""Name the fields where two JSON values differ, one line each (stdlib only).

Used where a bundle's two copies of one record disagree (the manifest's `policy_spec` against the spec embedded
in the model file): a reader needs `policy_spec.action.high[3]: manifest 2.1, model 2.175`, not two 3 kB dumps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MISSING = "<missing>"
"""How a side that lacks a key or list item is shown."""


def _show(value: Any) -> str:
    """Compact JSON text of a leaf (strings quoted, so `"1"` and `1` read differently)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def json_diff(a: Any, b: Any, path: str = "", *, names: tuple[str, str] = ("a", "b")) -> list[str]:
    """One line per differing leaf: `<path>: <names[0]> <value in a>, <names[1]> <value in b>`.

    Objects are compared key by key and lists item by item (a key or item only one side has is shown as
    `<missing>`), so a single changed number yields a single line naming it. An empty list means equal.
    `1` and `1.0` are equal (JSON does not tell them apart); `True` and `1` are not.
    """
    left, right = names
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a:
                out.append(f"{sub}: {left} {MISSING}, {right} {_show(b[key])}")
            elif key not in b:
                out.append(f"{sub}: {left} {_show(a[key])}, {right} {MISSING}")
            else:
                out.extend(json_diff(a[key], b[key], sub, names=names))
        return out
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        out = []
        for i in range(max(len(a), len(b))):
            sub = f"{path}[{i}]"
            if i >= len(a):
                out.append(f"{sub}: {left} {MISSING}, {right} {_show(b[i])}")
            elif i >= len(b):
                out.append(f"{sub}: {left} {_show(a[i])}, {right} {MISSING}")
            else:
                out.extend(json_diff(a[i], b[i], sub, names=names))
        return out
    # bool is an int in Python: compare types too so `true` vs `1` is reported.
    if isinstance(a, bool) != isinstance(b, bool) or a != b:
        return [f"{path or '<root>'}: {left} {_show(a)}, {right} {_show(b)}"]
    return []


def format_diff(lines: list[str], limit: int = 20) -> str:
    """The diff lines joined by newlines, at most `limit` of them, then how many more were left out."""
    shown = lines[:limit]
    if len(lines) > limit:
        shown.append(f"... and {len(lines) - limit} more field(s)")
    return "\n".join(shown)
