"""Replay, demonstration and intervention data."""

from robot_rl.data.replay import ReplayBuffer

__all__ = ["ReplayBuffer"]
