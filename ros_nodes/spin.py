"""Run a node until SIGINT/SIGTERM with a clean stop: the signal only sets a flag, the spin loop checks it.

Raising KeyboardInterrupt from a signal handler can land inside a pybind11 call of rclpy (e.g. while a message is
converted), where it surfaces as an unrelated RuntimeError and the process exits 1 without its final hold.
Waking up every `poll_s` to look at a flag costs nothing measurable and always takes the clean path.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any


class StopSignal:
    """While entered, SIGINT and SIGTERM only set a flag (`is_set`, `signum`); the previous handlers come back on exit.

    `run_node` enters it before the node is built: a signal that arrives while the node starts (the physics engine
    loading, its stepping thread just started) must not unwind the constructor halfway, which left a stepping
    thread running into interpreter shutdown (a segfault, seen in CI when a sibling node died at start).
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        self.signum = signum
        self.event.set()

    def is_set(self) -> bool:
        """True once SIGINT or SIGTERM arrived."""
        return self.event.is_set()

    def __enter__(self) -> StopSignal:
        self._previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous = {}


def spin_until_signal(executor: Any, poll_s: float = 0.05, stop: StopSignal | None = None) -> int:
    """Spin `executor` until SIGINT or SIGTERM (or the context shuts down); returns the signal number (0 if none).

    Call `rclpy.init(..., signal_handler_options=SignalHandlerOptions.NO)` first, so rclpy does not shut the
    context down before the node has published its last message. Pass `stop` when the signals are already being
    caught (a signal that came before the spin started then ends it at once).
    """
    import rclpy

    if stop is None:
        with StopSignal() as own:
            return spin_until_signal(executor, poll_s, own)
    while not stop.is_set() and rclpy.ok(context=executor.context):
        executor.spin_once(timeout_sec=poll_s)
    return stop.signum


def run_node(
    make_node: Callable[[], Any], args: list[str] | None = None, on_stop: Callable[[Any], None] | None = None
) -> int:
    """A node executable's whole life: hygiene warning, init, spin until a signal, `on_stop(node)`, shut down.

    `on_stop` runs while the context is still valid, so a node can publish its last words (a hold, "released").
    Signals are caught from before the node is built, so a stop requested while it starts waits for a whole node
    and then takes the same clean path.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.signals import SignalHandlerOptions

    from ros_nodes.executors import executor_kind, make_executor
    from ros_nodes.ros_env import warn_if_not_isolated

    warn_if_not_isolated()
    kind = executor_kind()  # a bad ROBOT_RL_EXECUTOR fails here, before rclpy starts
    with StopSignal() as stop:
        # Our own SIGINT/SIGTERM handling: rclpy's default handler shuts the context down first, and the last
        # messages could then no longer be published.
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        node = None
        executor = make_executor(kind)
        try:
            node = make_node()
            executor.add_node(node)
            spin_until_signal(executor, stop=stop)
        except ExternalShutdownException:
            pass
        finally:
            if node is not None:
                if on_stop is not None:
                    on_stop(node)
                executor.remove_node(node)
                node.destroy_node()
            executor.shutdown()
            rclpy.try_shutdown()
    return 0
