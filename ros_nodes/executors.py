"""Which rclpy executor a node spins on: one choice for every robot_rl node (and the latency benchmark's peer).

`ROBOT_RL_EXECUTOR` selects it per process (a launch file sets it in the node's environment; bringup passes its
own environment on), so the choice needs no parameter read before the node exists:

| value | executor | what it is for |
|---|---|---|
| `single` (default) | `rclpy.executors.SingleThreadedExecutor` | every callback on the spinning thread, in order |
| `multi` | `rclpy.executors.MultiThreadedExecutor` (2 threads) | callbacks of different groups may overlap |
| `events` | `rclpy.experimental.EventsExecutor` | rclpy's event-queue executor: no wait-set rebuild per spin |

The policy node's control tick runs on its own deadline thread whichever executor serves its ROS I/O
(ros_nodes/policy_node.py); the executor only changes how fast callbacks reach it. `bench/node_latency.py
--executors ...` measures each one side by side with a bare echo node on the same executor.
"""

from __future__ import annotations

import os
from typing import Any

EXECUTOR_ENV = "ROBOT_RL_EXECUTOR"
"""Environment variable that selects the executor of a robot_rl node process."""
EXECUTORS = ("single", "multi", "events")
"""The executor kinds `make_executor` builds."""
DEFAULT_EXECUTOR = "single"
"""What a node spins on when `ROBOT_RL_EXECUTOR` is unset or empty."""


def executor_kind(value: str | None = None) -> str:
    """The executor kind named by `value` (default: `$ROBOT_RL_EXECUTOR`, then `DEFAULT_EXECUTOR`).

    Raises:
        ValueError: an unknown name (a typo must not silently fall back to another executor).
    """
    kind = (os.environ.get(EXECUTOR_ENV, "") if value is None else value).strip().lower() or DEFAULT_EXECUTOR
    if kind not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={kind!r} is not an executor; choose one of {', '.join(EXECUTORS)}")
    return kind


def make_executor(kind: str | None = None, context: Any = None) -> Any:
    """A new rclpy executor of `kind` (see `executor_kind`) on `context` (None = the default context)."""
    kind = executor_kind(kind)
    if kind == "events":
        from rclpy.experimental.events_executor import EventsExecutor

        return EventsExecutor(context=context)
    if kind == "multi":
        from rclpy.executors import MultiThreadedExecutor

        return MultiThreadedExecutor(num_threads=2, context=context)
    from rclpy.executors import SingleThreadedExecutor

    return SingleThreadedExecutor(context=context)
