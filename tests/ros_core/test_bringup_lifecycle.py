"""Bringup's lifecycle client when DDS loses a request or its answer: ask the node's state, never transition twice.

ROS-free: the client's two service calls are replaced by a scripted node, so the retry logic is tested exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from ros_nodes import bringup
from ros_nodes.bringup import LifecycleClient, NoAnswer

CONFIGURE = 1


class _ScriptedNode:
    """Answers (or loses) change_state / get_state calls as scripted; counts the change requests it received."""

    def __init__(self, change_answers: list[bool | None], states: list[str]) -> None:
        self.change_answers = change_answers  # None = the answer is lost
        self.states = states
        self.change_requests = 0

    def call(self, client: Any, request: Any, timeout_s: float, alive: Callable[[], str | None] | None = None) -> Any:
        if client != "get":
            self.change_requests += 1
            answer = self.change_answers.pop(0)
            if answer is None:
                time.sleep(max(0.0, min(timeout_s, 0.01)))  # as long as a real lost call waits
                raise NoAnswer("change_state: no answer")
            return type("Response", (), {"success": answer})()
        label = self.states.pop(0)
        if label == "lost":
            time.sleep(max(0.0, min(timeout_s, 0.01)))
            raise NoAnswer("get_state: no answer")
        return type("Response", (), {"current_state": type("State", (), {"label": label})()})()


def _client(node: _ScriptedNode, monkeypatch: pytest.MonkeyPatch) -> LifecycleClient:
    client = LifecycleClient.__new__(LifecycleClient)  # no rclpy: only the retry logic is under test
    client._change = type("Client", (), {"srv_name": "/policy_node/change_state"})()
    client._get = "get"
    client._ChangeState = type(
        "ChangeState", (), {"Request": lambda: type("Req", (), {"transition": type("T", (), {})()})()}
    )
    client._GetState = type("GetState", (), {"Request": lambda: None})
    client._executor = type("Executor", (), {"spin_once": lambda self, timeout_sec: None})()
    client.fqn = "/policy_node"
    monkeypatch.setattr(client, "_call", node.call)
    monkeypatch.setattr(bringup, "_ANSWER_WAIT_S", 0.01)
    return client


def test_a_lost_answer_of_a_transition_that_happened_is_not_requested_again(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _ScriptedNode(change_answers=[None], states=["inactive"])
    assert _client(node, monkeypatch).transition(CONFIGURE, timeout_s=5.0) is True
    assert node.change_requests == 1  # configure is not idempotent: never sent twice


def test_a_lost_request_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _ScriptedNode(change_answers=[None, True], states=["unconfigured"])
    assert _client(node, monkeypatch).transition(CONFIGURE, timeout_s=5.0) is True
    assert node.change_requests == 2


def test_a_slow_transition_is_waited_for_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _ScriptedNode(change_answers=[None], states=["configuring", "lost", "configuring", "inactive"])
    assert _client(node, monkeypatch).transition(CONFIGURE, timeout_s=5.0) is True
    assert node.change_requests == 1


def test_a_transition_that_failed_while_its_answer_was_lost_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _ScriptedNode(change_answers=[None], states=["configuring", "unconfigured"])
    assert _client(node, monkeypatch).transition(CONFIGURE, timeout_s=5.0) is False
    assert node.change_requests == 1


def test_a_refused_transition_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _ScriptedNode(change_answers=[False], states=[])
    assert _client(node, monkeypatch).transition(CONFIGURE, timeout_s=5.0) is False


def test_a_node_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _ScriptedNode(change_answers=[None] * 10_000, states=["lost"] * 10_000)
    with pytest.raises(NoAnswer, match=r"no answer within 0\.2 s"):
        _client(node, monkeypatch).transition(CONFIGURE, timeout_s=0.2)
