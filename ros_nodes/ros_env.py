"""Keep ROS 2 traffic on this machine: per-run domain ids, loopback-only Fast DDS, shared-memory cleanup.

Nothing here imports rclpy: the environment has to be in place *before* `rclpy.init` (Fast DDS reads it once,
when the first participant is created).

What the isolation consists of:

- `ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`: rmw stops multicasting discovery and only looks for peers on this
  host (Humble ignores it; Jazzy and later honour it).
- `ROS_DOMAIN_ID` per run: concurrent test runs on one host do not see each other's `/joint_states`. Domains whose
  RTPS ports are already bound on this host are avoided (read from /proc/net/udp).
- `FASTDDS_DEFAULT_PROFILES_FILE`: a default participant profile whose only transports are UDPv4 restricted to
  127.0.0.1 and Fast DDS shared memory. Without it Fast DDS announces (and sends to) every interface's address.
- `cleanup_fastdds_shm()`: Fast DDS shared-memory segments and port files of processes that died without
  closing them (kill -9) stay in /dev/shm; this removes those whose owner is provably dead.
"""

from __future__ import annotations

import fcntl
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

RMW_IMPLEMENTATION = "rmw_fastrtps_cpp"
DOMAIN_ID_RANGE = (1, 100)
"""Domain ids handed out per run (inclusive). 0 is everyone's default; >101 collides with ephemeral ports on Linux."""

# RTPS well-known ports (DDSI-RTPS 9.6.1.1): PB + DG * domain_id, each domain owns DG consecutive ports.
_PORT_BASE = 7400
_DOMAIN_GAIN = 250

_PROFILE_XML = """<?xml version="1.0" encoding="UTF-8" ?>
<!-- Written by robot_rl (ros_nodes/ros_env.py): ROS 2 traffic stays on this host. -->
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>robot_rl_udp_loopback</transport_id>
        <type>UDPv4</type>
        <interfaceWhiteList>
          <address>127.0.0.1</address>
        </interfaceWhiteList>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>robot_rl_shm</transport_id>
        <type>SHM</type>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="robot_rl_loopback" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>robot_rl_udp_loopback</transport_id>
          <transport_id>robot_rl_shm</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""

_counter = 0


def fastdds_profile_path() -> Path:
    """The loopback-only Fast DDS profile (written once per user into the temp dir, atomically)."""
    directory = Path(tempfile.gettempdir()) / f"robot_rl_ros_{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / "fastdds_loopback.xml"
    if not path.exists() or path.read_text() != _PROFILE_XML:
        tmp = directory / f".fastdds_loopback.{os.getpid()}.tmp"
        tmp.write_text(_PROFILE_XML)
        os.replace(tmp, path)  # readers never see a half-written profile
    return path


def domains_in_use() -> set[int]:
    """Domain ids with an RTPS port bound on this host (any process), read from /proc/net/udp{,6}."""
    used: set[int] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 2 or ":" not in fields[1]:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port >= _PORT_BASE:
                used.add((port - _PORT_BASE) // _DOMAIN_GAIN)
    return used


def pick_domain_id() -> int:
    """A domain id for this run: spread over pid, time and a per-process counter, skipping domains in use."""
    global _counter
    lo, hi = DOMAIN_ID_RANGE
    n = hi - lo + 1
    _counter += 1
    start = (os.getpid() * 7919 + time.time_ns() // 1_000_000 + _counter * 37) % n
    busy = domains_in_use()
    for k in range(n):
        candidate = lo + (start + k) % n
        if candidate not in busy:
            return candidate
    return lo + start  # every domain busy: still spread (nothing better is knowable)


def isolated_ros_env(domain_id: int | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of `base` (default: os.environ) that keeps ROS 2 on loopback in its own domain.

    Use it as the `env` of a subprocess that runs a node; `apply_isolated_ros_env` does the same in-process.
    """
    env = dict(os.environ if base is None else base)
    did = pick_domain_id() if domain_id is None else int(domain_id)
    if not 0 <= did <= 232:
        raise ValueError(f"ROS_DOMAIN_ID must be in 0..232, got {did}")
    env["ROS_DOMAIN_ID"] = str(did)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_STATIC_PEERS", None)  # static peers could point off-host
    env["RMW_IMPLEMENTATION"] = RMW_IMPLEMENTATION
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(fastdds_profile_path())
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)  # the legacy name would win on older Fast DDS
    env.pop("FASTDDS_BUILTIN_TRANSPORTS", None)  # would override the profile's transports
    env["RMW_FASTRTPS_USE_QOS_FROM_XML"] = "0"  # topic QoS still comes from the code
    return env


_ISOLATION_KEYS = (
    "ROS_DOMAIN_ID",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "RMW_IMPLEMENTATION",
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "RMW_FASTRTPS_USE_QOS_FROM_XML",
)
_REMOVED_KEYS = ("ROS_STATIC_PEERS", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")


def apply_isolated_ros_env(domain_id: int | None = None) -> int:
    """Put the isolated environment into this process's os.environ (before `rclpy.init`); returns the domain id.

    Raises:
        RuntimeError: rclpy is already initialized here with a different domain id (Fast DDS would ignore the
            change, so the caller would believe in an isolation that is not there).
    """
    env = isolated_ros_env(domain_id)
    _refuse_if_rclpy_running(int(env["ROS_DOMAIN_ID"]))
    for key in _ISOLATION_KEYS:
        os.environ[key] = env[key]
    for key in _REMOVED_KEYS:
        os.environ.pop(key, None)
    return int(env["ROS_DOMAIN_ID"])


def _refuse_if_rclpy_running(domain_id: int) -> None:
    import sys

    rclpy = sys.modules.get("rclpy")
    if rclpy is None:
        return
    try:
        running = bool(rclpy.ok())
    except Exception:
        return
    current = os.environ.get("ROS_DOMAIN_ID")
    if running and current != str(domain_id):
        raise RuntimeError(
            f"rclpy is already initialized in this process (ROS_DOMAIN_ID={current!r}); shut it down before "
            f"switching to domain {domain_id}"
        )


# ---------------------------------------------------------------------------------------------- shared memory
# What Fast DDS 3.x (ros-fastdds 3.2.3 wheels) leaves in /dev/shm, observed on this machine:
#   fastdds_<16 hex>           a participant's shared-memory segment, plus
#   fastdds_<16 hex>_el        its "exclusive lock" file: the owner holds flock(LOCK_EX) on it while alive
#   fastdds_port<N>            a listening port's ring buffer, plus
#   fastdds_port<N>_el / _sl   lock files (exclusive for the listener, shared for each user)
#   sem.fastdds_port<N>_mutex  the port's named semaphore
# and the same with fastrtps_ (Fast DDS 2.x) and fast_datasharing_ (data-sharing segments).
# A process killed with -9 keeps none of its flocks (the kernel drops them), so "can I take the lock?" tells a
# dead owner from a live one without guessing from pids.
_SHM_DIR = Path("/dev/shm")
_PREFIXES = ("fastdds_", "fastrtps_", "fast_datasharing_", "sem.fastdds_", "sem.fastrtps_")


def _stem(name: str) -> str:
    """The segment/port name a shm file belongs to (lock-file suffixes and semaphore decorations removed)."""
    s = name[4:] if name.startswith("sem.") else name
    for suffix in ("_el", "_sl", "_mutex"):
        if s.endswith(suffix):
            return s[: -len(suffix)]
    return s


def _lock_held(path: Path) -> bool | None:
    """True when some process holds any flock on `path`; None when it cannot be checked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _mapped_shm_names() -> set[str]:
    """Names of /dev/shm files mapped by any process we can inspect (a second guard besides the locks)."""
    names: set[str] = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            text = maps.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            i = line.find("/dev/shm/")
            if i >= 0:
                names.add(line[i + len("/dev/shm/") :].split(" ")[0])
    return names


def _newest_change_s(files: list[Path]) -> float:
    """Latest ctime/mtime among `files` (inf when one cannot be read: treat as brand new)."""
    newest = 0.0
    for p in files:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        except OSError:
            return math.inf
        newest = max(newest, st.st_ctime, st.st_mtime)
    return newest


def cleanup_fastdds_shm(shm_dir: Path | str = _SHM_DIR, min_age_s: float = 2.0) -> int:
    """Remove Fast DDS shared-memory leftovers whose owners are dead; returns how many files were removed.

    Conservative: a group of files (segment/port + its lock files + its semaphore) is removed only when none of
    its lock files is locked by anyone (flock works across processes and PID namespaces), no process we can
    see maps any file of the group, and none was created or changed in the last `min_age_s` seconds (a
    participant that is starting up may not hold its lock yet). Files of live participants and anything that
    cannot be checked are left alone. Caveat: a process in another PID namespace sharing this /dev/shm is
    invisible to the mapping check; for groups with lock files the lock check still protects it.
    """
    directory = Path(shm_dir)
    try:
        entries = [p for p in directory.iterdir() if p.name.startswith(_PREFIXES) and p.is_file()]
    except OSError:
        return 0
    groups: dict[str, list[Path]] = {}
    for p in entries:
        groups.setdefault(_stem(p.name), []).append(p)
    mapped = _mapped_shm_names()
    now = time.time()
    removed = 0
    for files in groups.values():
        if any(p.name in mapped for p in files) or _newest_change_s(files) > now - min_age_s:
            continue  # in use by a process we can see, or too young to judge
        # A group without lock files is a port whose listener closed cleanly while a peer that was killed still
        # referenced it (Fast DDS unlinks `_el` on close, the port file on the last reference). Nobody listens
        # on it, and no visible process maps it.
        locks = [p for p in files if p.name.endswith(("_el", "_sl"))]
        if any(_lock_held(p) is not False for p in locks):
            continue  # alive, or unknowable: keep
        for p in files:
            try:
                p.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError:
                continue
    return removed


def warn_if_not_isolated(stream: TextIO | None = None) -> str | None:
    """Print (and return) a warning when this process would start ROS 2 without the network hygiene settings.

    Node entry points call it before `rclpy.init`; they never change the domain themselves (on a robot the
    deployment chooses it), they only say what is missing.
    """
    missing = []
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
        missing.append("ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (else discovery multicasts on every interface)")
    if not os.environ.get("ROS_DOMAIN_ID"):
        missing.append("ROS_DOMAIN_ID (else this graph shares domain 0 with everyone on the network)")
    if not missing:
        return None
    text = "warning: ROS 2 is not isolated to this host: set " + "; ".join(missing)
    print(text, file=stream or sys.stderr)
    return text
