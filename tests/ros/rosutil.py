"""Small helpers for in-process ROS tests: a private context, spinning until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor


@contextmanager
def ros_context() -> Iterator[tuple[Context, SingleThreadedExecutor]]:
    """A fresh rclpy context + executor (the caller's `ros_env` fixture already isolated the domain)."""
    ctx = Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    try:
        yield ctx, executor
    finally:
        for node in list(executor.get_nodes()):
            executor.remove_node(node)
            stop = getattr(node, "_halt", None)
            if callable(stop):
                stop()
            node.destroy_node()
        executor.shutdown()
        rclpy.shutdown(context=ctx)


def spin_until(executor: SingleThreadedExecutor, cond: Callable[[], Any], timeout_s: float = 5.0) -> bool:
    """Spin until `cond()` is truthy or the timeout passes; returns whether it held."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        executor.spin_once(timeout_sec=0.01)
    return bool(cond())


def spin_for(executor: SingleThreadedExecutor, seconds: float) -> None:
    """Spin for a fixed time."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)
