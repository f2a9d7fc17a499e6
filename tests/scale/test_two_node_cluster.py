"""A real two-node Ray cluster on this machine, on loopback only: distributed training and a sweep join it by address.

Two raylets (a head and a worker node, one CPU each, the worker with a custom `worker_node` resource, each with its
own temp dir) are started with `ray.cluster_utils.Cluster`, Ray's own utility for multi-node clusters on one host.

Why not `ray start` in subprocesses: on Linux the CLI turns `--node-ip-address=127.0.0.1` and `--address
127.0.0.1:PORT` into the machine's network address (`resolve_ip_for_localhost`). The head can be kept on loopback
with `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` (what `init_ray` does), but `ray start --address=...` refuses to start a
worker node under that setting ("Multi-node Ray clusters are not supported on Windows and OSX"), and without it the
worker dials GCS at the network address, where a loopback-only head does not listen. `Cluster` starts the same Ray
processes (`ray._private.node.Node`, as `ray start` does) without that check, so both nodes stay on 127.0.0.1.
A second node on the same host does accept its own temp dir.

The test process holds the loopback setting (`_loopback_node`) for the whole module: a driver joining
`127.0.0.1:PORT` resolves the address the same way, and the Ray processes it spawns inherit the setting.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.tune")

from ray.cluster_utils import Cluster  # noqa: E402 - after the skip: nothing here runs without Ray

from robot_rl.algos.sac import SACConfig  # noqa: E402
from robot_rl.cli import main  # noqa: E402
from robot_rl.scale.ray_env import LOOPBACK, _loopback_node, init_ray, shutdown_ray  # noqa: E402
from robot_rl.train import checkpoint as ckpt  # noqa: E402
from robot_rl.train.config import TrainConfig  # noqa: E402
from robot_rl.train.loop import train  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TINY = [
    "--env", "Pendulum-v1", "--total-steps", "300", "--learning-starts", "100", "--eval-episodes", "1",
    "--log-every", "100", "--no-tensorboard", "--actor-hidden", "32", "32", "--critic-hidden", "32", "32",
    "--batch-size", "32", "--no-progress", "--eval-every", "0",
]  # fmt: skip


@dataclass
class TwoNodes:
    cluster: Any
    address: str
    head_id: str
    worker_id: str


def _descendants(root: int) -> set[int]:
    """`root` and every process below it (from /proc: the Ray processes this test started, and their workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[TwoNodes]:
    """Head (1 CPU) and worker node (1 CPU + `worker_node`), each with its own short temp dir; stopped at the end."""
    temps = [tempfile.mkdtemp(prefix=p, dir="/tmp") for p in ("rrh", "rrw")]  # short: socket paths <= 107 bytes
    common = {"node_ip_address": LOOPBACK, "num_cpus": 1, "env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}}
    # Cluster records its address for `ray.init(address="auto")` in /tmp/ray; keep it in the head's temp dir instead,
    # so other Ray instances on this machine are not pointed at this one.
    write_address = ray._private.utils.write_ray_address
    with _loopback_node(), pytest.MonkeyPatch.context() as mp:
        mp.setattr(ray._private.utils, "write_ray_address", lambda address, _=None: write_address(address, temps[0]))
        cluster = Cluster()
        try:
            cluster.add_node(**common, include_dashboard=False, temp_dir=temps[0])
            worker = cluster.add_node(**common, resources={"worker_node": 1}, temp_dir=temps[1])
            cluster.wait_for_nodes()
            yield TwoNodes(cluster, cluster.address, cluster.head_node.node_id, worker.node_id)
        finally:
            shutdown_ray()
            cluster.shutdown()
            for temp in temps:
                shutil.rmtree(temp, ignore_errors=True)


def test_the_cluster_has_two_nodes_with_their_own_temp_dirs_on_loopback(two_nodes: TwoNodes) -> None:
    r = init_ray(two_nodes.address)
    try:
        alive = [n for n in r.nodes() if n["Alive"]]
        assert {n["NodeID"] for n in alive} == {two_nodes.head_id, two_nodes.worker_id}
        assert all(n["NodeManagerAddress"] == LOOPBACK for n in alive)
        assert r.cluster_resources()["CPU"] == 2.0 and r.cluster_resources()["worker_node"] == 1.0
        head, worker = two_nodes.cluster.head_node, next(iter(two_nodes.cluster.worker_nodes))
        assert head.get_temp_dir_path() != worker.get_temp_dir_path()

        @r.remote(num_cpus=0, resources={"worker_node": 1})
        def where() -> str:
            return str(ray.get_runtime_context().get_node_id())

        assert r.get(where.remote()) == two_nodes.worker_id, "the custom resource pins work to the worker node"
    finally:
        shutdown_ray()


def test_distributed_training_joins_by_address_and_uses_both_nodes(two_nodes: TwoNodes, tmp_path: Path) -> None:
    cfg = TrainConfig(
        env="Pendulum-v1",
        total_steps=600,
        learning_starts=200,
        eval_every=0,
        eval_episodes=1,
        log_every=100,
        tensorboard=False,
        progress=False,
        torch_threads=1,
        out_dir=tmp_path / "runs",
        run_name="two-nodes",
        actors=2,
        actor_block_steps=100,
        ray_address=two_nodes.address,
    )
    tiny = SACConfig(actor_hidden=(32, 32), critic_hidden=(32, 32), batch_size=32)
    result = train(cfg, "sac", tiny)  # joins the cluster itself and disconnects at the end

    assert result.steps == 600
    for part in ("config.json", "metrics.jsonl", "summary.json", "checkpoints/latest"):
        assert (result.run_dir / part).exists(), f"{result.run_dir} lacks {part}"
    latest = ckpt.latest_checkpoint(result.run_dir / "checkpoints")
    assert latest is not None
    final = ckpt.load_checkpoint(latest)
    dist = final.state["distributed"]
    assert dist["updates"] == dist["weight_version"] == 400 and dist["actor_restarts"] == 0
    versions = final.data["distributed/weight_version"].numpy()
    assert len(versions) == 600 and versions[:200].max() == 0, "warm-up blocks act with the initial weights"
    assert versions.max() > 0, "later blocks act with weights the learner pushed across the cluster"

    # One CPU per node and one per actor: the two collectors can only have run one on each node. GCS keeps dead
    # actors in its table (the state API would need the dashboard, which this cluster does not run).
    r = init_ray(two_nodes.address)
    try:
        collectors = [a for a in r._private.state.actors().values() if a["ActorClassName"].endswith("Collector")]
    finally:
        shutdown_ray()
    assert len(collectors) == 2, collectors
    assert {a["Address"]["NodeID"] for a in collectors} == {two_nodes.head_id, two_nodes.worker_id}


def test_a_sweep_joins_by_address_and_writes_its_table(two_nodes: TwoNodes, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["sweep", "sac", *TINY, "--seeds", "0", "1", "--address", two_nodes.address, "--out", str(sweep)]
    assert main(args) == 0

    record = json.loads((sweep / "sweep.json").read_text())
    assert record["status"] == "finished"
    assert {name: t["status"] for name, t in record["trials"].items()} == {"c00-s0": "finished", "c00-s1": "finished"}
    for name in record["trials"]:
        assert json.loads((sweep / "trials" / name / "summary.json").read_text())["steps"] == 300
    results = json.loads((sweep / "results.json").read_text())
    assert results["configs"][0]["seeds"]["finished"] == [0, 1]
    assert "| c00 |" in (sweep / "results.md").read_text()
    r = init_ray(two_nodes.address)
    try:
        trials = [a for a in r._private.state.actors().values() if not a["ActorClassName"].endswith("Collector")]
    finally:
        shutdown_ray()
    assert len(trials) == 2, trials  # Tune runs each trial in an actor of one CPU: one per node
    assert {a["Address"]["NodeID"] for a in trials} == {two_nodes.head_id, two_nodes.worker_id}


def test_every_port_of_the_cluster_is_bound_to_loopback(two_nodes: TwoNodes) -> None:
    """Listeners of this process and its descendants (the cluster's Ray processes and their workers) are on
    127.0.0.1; sockets of other processes (another Ray, the benchmark) are not this cluster's and are not looked at."""
    ours = _descendants(os.getpid())  # the Ray processes Cluster started are children of this one
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    listeners: dict[str, list[str]] = {}  # process name -> listening addresses
    for line in out.splitlines():
        users = line.split("users:")[-1]
        pids = {int(p.split("=")[1]) for p in users.replace(")", ",").split(",") if "pid=" in p}
        if pids & ours:
            listeners.setdefault(users.split('"')[1], []).append(line.split()[3])
    assert len(listeners.get("raylet", [])) >= 2 and listeners.get("gcs_server"), listeners  # both nodes, the head
    hosts = {addr.rsplit(":", 1)[0] for addrs in listeners.values() for addr in addrs}
    assert hosts <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, listeners
