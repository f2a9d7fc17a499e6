"""One way to turn a node's health entry into a `diagnostic_msgs/DiagnosticStatus` (every node publishes them)."""

from __future__ import annotations

from collections.abc import Mapping

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


def status_msg(
    level: int, name: str, message: str, hardware_id: str = "", values: Mapping[str, object] | None = None
) -> DiagnosticStatus:
    """A `DiagnosticStatus` (level 0 OK, 1 WARN, 2 ERROR, 3 STALE) with its values as strings."""
    return DiagnosticStatus(
        level=bytes([level]),
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=str(v)) for k, v in (values or {}).items()],
    )
