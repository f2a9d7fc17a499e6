"""ROS-free diagnostics of the safety chain: one entry per link, converted to diagnostic_msgs by the node."""

from __future__ import annotations

from dataclasses import dataclass, field

OK, WARN, ERROR = 0, 1, 2
"""Levels, numerically equal to diagnostic_msgs/DiagnosticStatus OK, WARN, ERROR."""


@dataclass(frozen=True)
class DiagnosticEntry:
    """Status of one safety link (maps 1:1 onto a diagnostic_msgs/DiagnosticStatus)."""

    name: str
    """`safety/<link>`, the same namespace as the metrics."""
    level: int
    """0 OK, 1 WARN, 2 ERROR."""
    message: str
    """One line for an operator: what the link is doing now."""
    values: dict[str, str] = field(default_factory=dict)
    """Key/value pairs: `count` (steps this link changed the action), `last_reason`, `active`."""
