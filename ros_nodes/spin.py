"""Run a node until SIGINT/SIGTERM with a clean stop: the signal only sets a flag, the spin loop checks it.

Raising KeyboardInterrupt from a signal handler can land inside a pybind11 call of rclpy (e.g. while a message is
converted), where it surfaces as an unrelated RuntimeError and the process exits 1 without its final hold.
Waking up every `poll_s` to look at a flag costs nothing measurable and always takes the clean path.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def spin_until_signal(executor: Any, poll_s: float = 0.05) -> int:
    """Spin `executor` until SIGINT or SIGTERM (or the context shuts down); returns the signal number (0 if none).

    Call `rclpy.init(..., signal_handler_options=SignalHandlerOptions.NO)` first, so rclpy does not shut the
    context down before the node has published its last message.
    """
    import rclpy

    stop = threading.Event()
    got = {"signum": 0}

    def handler(signum: int, frame: Any) -> None:
        got["signum"] = signum
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.is_set() and rclpy.ok(context=executor.context):
            executor.spin_once(timeout_sec=poll_s)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return got["signum"]
