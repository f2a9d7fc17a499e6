"""Starting or joining Ray for robot_rl's scale-out features (sweeps, distributed collection, parallel evaluation).

Ray is optional (`pip install "robot-rl[scale]"`); nothing outside `robot_rl.scale` imports it, and the functions
here import it lazily so a missing Ray is a clear error at the point of use, not at import of the package.

Local Ray (the default) binds to loopback only, starts no dashboard and sends no usage statistics: a laptop or a CI
machine must not open ports to the network or phone home. `address` joins an existing cluster (`ray start --head`
on the head node, `ray start --address HEAD:PORT` on the others) the way Ray documents it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

LOOPBACK = "127.0.0.1"
"""The address a local Ray node binds to."""
_QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage report to the network
    "RAY_DEDUP_LOGS": "0",  # every worker's own lines, not "[repeated 3x]": a failing trial's log must be readable
}


class RayUnavailable(RuntimeError):
    """Ray is not installed (the `scale` extra) or could not be started or joined."""


def quiet_ray_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: a copy of os.environ) with the settings every Ray process of ours runs with."""
    out = dict(os.environ if env is None else env)
    for key, value in _QUIET_ENV.items():
        out.setdefault(key, value)
    return out


def require_ray() -> ModuleType:
    """The `ray` module, or RayUnavailable with the install command."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(
            f'this feature needs Ray: pip install "robot-rl[scale]" (ray[tune]); import failed: {exc}'
        ) from exc
    return ray


def require_tune() -> ModuleType:
    """The `ray.tune` module, or RayUnavailable with the install command (Ray without its `tune` extra lacks it)."""
    require_ray()
    try:
        from ray import tune
    except ImportError as exc:
        raise RayUnavailable(
            f'this feature needs Ray Tune: pip install "robot-rl[scale]" (ray[tune]); import failed: {exc}'
        ) from exc
    return tune


@contextmanager
def _loopback_node() -> Iterator[None]:
    """While a local Ray starts: make it bind every server to loopback.

    Ray turns a `127.0.0.1` node address into the machine's network address (`resolve_ip_for_localhost`) and then
    listens on every interface, unless clusters are "disabled" (its Windows/macOS mode, which keeps the node on
    loopback). The flag is read from the environment by the processes Ray spawns, and from an import-time constant
    in this one; both are restored afterwards, so a later `init_ray(address=...)` joins clusters as usual.
    """
    from ray._private import ray_constants

    key = getattr(ray_constants, "ENABLE_RAY_CLUSTERS_ENV_VAR", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    old_env, old_flag = os.environ.get(key), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[key] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old_env


def _is_loopback(address: str) -> bool:
    """True for `127.x.y.z:PORT` / `localhost:PORT`: a cluster that listens on loopback only, which a driver can join
    only with Ray's loopback mode on (otherwise Ray dials the machine's network address instead)."""
    host = address.rsplit(":", 1)[0].strip("[]")
    return host == "localhost" or host.startswith("127.") or host == "::1"


def init_ray(
    address: str = "",
    *,
    num_cpus: int | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    runtime_env: dict[str, Any] | None = None,
) -> ModuleType:
    """Connect this process to Ray once; returns the `ray` module.

    Args:
        address: "" starts a local single-node Ray on loopback; "HOST:PORT" (or "auto") joins a running cluster.
        num_cpus: CPUs a local Ray offers to tasks and actors (None = all cores). Ignored when joining.
        temp_dir: where a local Ray keeps its sockets and logs (None = Ray's default under /tmp).
        runtime_env: Ray runtime environment for the workers (e.g. `{"env_vars": {...}}`).

    Raises:
        RayUnavailable: Ray is missing, or the cluster at `address` cannot be reached.
    """
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)  # the driver and every worker it spawns inherit these
    ray = require_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"log_to_driver": True, "runtime_env": runtime_env}
    if address:
        kwargs["address"] = address
    else:
        kwargs.update(num_cpus=num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK)
        if temp_dir is not None:
            Path(temp_dir).mkdir(parents=True, exist_ok=True)
            kwargs["_temp_dir"] = str(Path(temp_dir).resolve())
    try:
        if address and not _is_loopback(address):
            ray.init(**kwargs)
        else:  # a local Ray, or a cluster on this machine's loopback (tests/scale/test_two_node_cluster.py)
            with _loopback_node():
                ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray on loopback"
        raise RayUnavailable(f"cannot start or join {where}: {exc}") from exc
    return ray


def shutdown_ray() -> None:
    """Disconnect (and stop a local Ray this process started); a no-op when Ray is absent or not running."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
