"""Which Ray addresses are a cluster on this machine's loopback (joined with Ray's loopback mode on)."""

from __future__ import annotations

import pytest

from robot_rl.scale.ray_env import _is_loopback


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:6379", True),
        ("127.0.1.1:6379", True),
        ("localhost:6379", True),
        ("[::1]:6379", True),
        ("10.0.0.1:6379", False),
        ("head.example:6379", False),
        ("auto", False),
    ],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert _is_loopback(address) is loopback
