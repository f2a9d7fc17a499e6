"""ROS 2 test fixtures: every test gets its own domain on loopback, and Fast DDS leftovers are cleaned up.

Tests under tests/ros are marked `ros` and skipped (with the reason) where rclpy is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ros_nodes.ros_env import apply_isolated_ros_env, cleanup_fastdds_shm

_ROS_KEYS = (
    "ROS_DOMAIN_ID",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "RMW_IMPLEMENTATION",
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "RMW_FASTRTPS_USE_QOS_FROM_XML",
    "ROS_STATIC_PEERS",
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    "FASTDDS_BUILTIN_TRANSPORTS",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this folder `ros` (so `-m "not ros"` deselects them)."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.ros)


@pytest.fixture
def ros_env() -> Iterator[int]:
    """Apply a fresh ROS domain id + loopback-only Fast DDS to this process; yields the domain id.

    The test must rclpy.init/shutdown inside (the environment is read when a context is created). Afterwards the
    previous environment comes back and shared-memory files of dead Fast DDS participants are removed.
    """
    pytest.importorskip("rclpy", reason="rclpy is not installed (pip install -e '.[ros]')")
    saved = {k: os.environ.get(k) for k in _ROS_KEYS}
    cleanup_fastdds_shm()  # leftovers of earlier killed runs (only files whose owners are provably dead)
    domain_id = apply_isolated_ros_env()
    try:
        yield domain_id
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        cleanup_fastdds_shm()
