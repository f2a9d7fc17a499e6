"""The one error type of the simulation suite: bad names, bad actions, bad configuration."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SimError(ValueError):
    """A simulation request that cannot be honoured (unknown name, malformed action, invalid setting)."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> SimError:
    """A SimError for an unknown `kind` name, listing close matches (or every known name) so the fix is obvious."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {close}?" if close else f"known: {known}"
    return SimError(f"unknown {kind} {name!r}; {hint}")
