"""The QoS profiles of the human-in-the-loop topics, one definition for both sides (policy node and learner).

Liveliness leases must match as DDS requires (offered lease <= requested lease, else the two never connect): the
step stream's writer and reader both use `STREAM_LEASE_S`; the learner offers `HEARTBEAT_OFFERED_S` on its
heartbeat and the policy node asks `HEARTBEAT_REQUESTED_S`.
"""

from __future__ import annotations

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy

STREAM_LEASE_S = 1.0
"""The step stream's liveliness lease: the learner is told this long after the policy node dies (or hangs)."""
HEARTBEAT_OFFERED_S = 1.0
"""The lease the learner offers on its heartbeat."""
HEARTBEAT_REQUESTED_S = 2.0
"""The lease the policy node asks of the heartbeat: it hears the learner is gone within about this."""


def _alive(depth: int, lease_s: float) -> QoSProfile:
    return QoSProfile(
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        liveliness=LivelinessPolicy.AUTOMATIC,
        liveliness_lease_duration=Duration(seconds=lease_s),
    )


STREAM_QOS = _alive(1000, STREAM_LEASE_S)
"""The step stream: reliable with room for several seconds of steps (a learner that falls behind loses nothing
until it is full), liveliness-leased."""
HEARTBEAT_OFFERED_QOS = _alive(1, HEARTBEAT_OFFERED_S)
"""The learner's heartbeat publisher."""
HEARTBEAT_REQUESTED_QOS = _alive(1, HEARTBEAT_REQUESTED_S)
"""The policy node's heartbeat subscription."""
ANNOUNCE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""Bundle announcements: latched, so a node that (re)connects gets the newest."""
