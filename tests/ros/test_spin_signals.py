"""`run_node` takes the clean stop path for a signal that arrives while the node is still being built."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (pip install -e '.[ros]')")


def test_sigint_while_the_node_is_built_still_stops_it_cleanly(ros_env: int) -> None:
    from rclpy.node import Node

    from ros_nodes.spin import run_node

    events: list[str] = []

    class Starting(Node):
        def __init__(self) -> None:
            super().__init__("starting_node")
            # The stop request lands mid-construction (CI: a sibling node died while this one started).
            os.kill(os.getpid(), signal.SIGINT)
            events.append("built")  # before the fix, KeyboardInterrupt unwound the constructor before this

        def destroy_node(self) -> None:
            events.append("destroyed")
            super().destroy_node()

    def on_stop(node: Any) -> None:
        events.append("on_stop")

    previous = signal.getsignal(signal.SIGINT)
    assert run_node(Starting, [], on_stop) == 0
    assert events == ["built", "on_stop", "destroyed"]
    assert not rclpy.ok()
    assert signal.getsignal(signal.SIGINT) is previous  # the process's own handler is back
