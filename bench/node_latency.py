"""Control-loop latency of the policy node vs a bare rclpy echo node, measured side by side in the same run.

A driver process plays the robot: it publishes `/joint_states` (+ the bundle's `/observations/<key>` topics) at
each rate on absolute deadlines. Two node processes answer every joint state on the same SingleThreadedExecutor
and QoS: the policy node (7-DoF Panda reach bundle, 2x256 MLP, safety chain on, trigger=joint_states) and a bare
echo node (bench/ros_echo_node.py). Reported per rate:

* `p50_ms`/`p99_ms`/`p999_ms`: the node's own time from `/joint_states` callback entry to command publish
  (observation assembly + ONNX + safety chain + publish) — the issue's metric; same for the echo;
* `deadline_miss_rate`: share of samples whose command went out later than one control period after arrival;
* round trip at the driver (publish → command received, two DDS hops) for both nodes, the honest end-to-end;
* the same policy-node run with MCAP recording on (`record_dir`), to show the recorder's effect on the loop;
* the same policy-node run with the `cbf` link in the chain (the barrier QP of docs/safety.md: the pillar capsule
  and the floor around the Panda, solved every tick), to show what the barrier filter adds to the loop.

The driver publishes a plausible, constant Panda pose (the joint-space home) so every link of the chain runs on
every tick (the sequence number the echo node sends back rides on an extra `bench_seq` joint the policy node
ignores).

Writes docs/benchmarks/node_latency.{json,md}. Every process gets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a
per-run ROS_DOMAIN_ID (ros_nodes.ros_env); Fast DDS leftovers are cleaned at the end.

Usage: .venv/bin/python bench/node_latency.py [--seconds 60] [--rates 100 500] [--out-dir docs/benchmarks]
           [--no-record-run] [--no-cbf-run]
       .venv/bin/python bench/node_latency.py --from-json docs/benchmarks/node_latency.json   # markdown only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from ros_nodes.executors import DEFAULT_EXECUTOR, EXECUTOR_ENV, EXECUTORS  # noqa: E402
from ros_nodes.ros_env import apply_isolated_ros_env, cleanup_fastdds_shm, isolated_ros_env  # noqa: E402

TARGETS = {100: {"p99_ms": 1.0, "deadline_miss_rate": 0.001}, 500: {"p99_ms": 1.0, "deadline_miss_rate": 0.01}}
WARMUP_S = 2.0
HOME_POSE_RAD = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
"""The Panda's joint-space home: the constant, plausible reading the driver publishes."""
CBF_PARAMS = {
    "urdf": "pybullet_data:franka_panda/panda.urdf",
    "ee_link": "panda_grasptarget",
    "safety": {
        "links": [
            "estop", "observation_watchdog", "command_watchdog", "plausibility", "shape", "non_finite", "cbf",
            "joint_limits", "workspace",
        ],
        "cbf": {
            "gamma": 0.1,
            # A pillar 1.4 cm (clearance) in front of the hand at home: most of the policy's commands approach it,
            # so the QP is solved on most ticks (the measured cost is the solve's, not only the rows').
            "capsules_m": [0.43, 0.0, 0.0, 0.43, 0.0, 0.6, 0.039],
            "halfspaces": [0.0, 0.0, -1.0, -0.02],
            "point_radius_m": 0.05,
            "margin_m": 0.02,
            "time_budget_s": 0.001,
            "lookahead_periods": 3.0,
        },
    },
}  # fmt: skip
"""The CBF run's extra node parameters: docs/safety.md's example (a pillar capsule and the floor), the pillar moved
up to the hand."""


def make_bundle(out: Path) -> Path:
    """A Panda reach bundle with a SAC-sized actor (2x256, normalizer on), exported through the real path."""
    import gymnasium as gym
    import torch

    import sim  # noqa: F401
    from robot_rl.export.onnx_export import export_policy
    from robot_rl.nets.actors import GaussianActor, GaussianMean
    from robot_rl.nets.normalizer import ObsNormalizer
    from robot_rl.nets.policy import TanhPolicy
    from robot_rl.train.envs import policy_spec_for

    env = gym.make("robot_rl/PandaReach-v0")
    spec = policy_spec_for(env, "robot_rl/PandaReach-v0")
    env.close()
    torch.manual_seed(0)
    dim, act = spec.observation.dim, spec.action.dim
    normalizer = ObsNormalizer(dim, enabled=True)
    normalizer.var.fill_(0.25)
    policy = TanhPolicy(spec, normalizer, GaussianMean(GaussianActor(dim, act, (256, 256)))).eval()
    export_policy(policy, out, training_config={"algo": "bench"}, extra={"source": "bench/node_latency.py"})
    return out


class Driver:
    """Publishes the robot's sensor stream and timestamps every command it gets back."""

    def __init__(self, layout: dict[str, list[int]], joints: list[str]) -> None:
        import rclpy
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        self.rclpy = rclpy
        self.node = Node("bench_driver")
        self.JointState, self.F64 = JointState, Float64MultiArray
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.js_pub = self.node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        self.obs_pubs = {
            k: self.node.create_publisher(Float64MultiArray, f"/observations/{k}", qos_profile_sensor_data)
            for k in layout
            if k not in ("joint_pos", "joint_vel")
        }
        self.obs_sizes = {k: int(np.prod(layout[k])) for k in self.obs_pubs}
        self.joints = joints
        home = HOME_POSE_RAD if len(joints) == len(HOME_POSE_RAD) else (0.0,) * len(joints)
        self.pose = [float(q) for q in home]
        self.sent_ns: list[int] = []
        self.sent_by_seq: dict[int, int] = {}
        self.seq = 0
        self.policy_rx_ns: list[int] = []
        self.echo_rx: list[tuple[int, int]] = []  # (receive time, sequence number echoed back)
        self.node.create_subscription(
            Float64MultiArray,
            "/velocity_controller/commands",
            lambda m: self.policy_rx_ns.append(time.monotonic_ns()),
            reliable,
        )
        self.node.create_subscription(
            Float64MultiArray,
            "/echo/commands",
            lambda m: self.echo_rx.append((time.monotonic_ns(), int(m.data[0]))),
            reliable,
        )
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def change_state(self, transition_id: int) -> bool:
        from lifecycle_msgs.srv import ChangeState

        client = self.node.create_client(ChangeState, "/policy_node/change_state")
        if not client.wait_for_service(timeout_sec=20.0):
            raise RuntimeError("policy node lifecycle service did not appear")
        req = ChangeState.Request()
        req.transition.id = transition_id
        fut = client.call_async(req)
        end = time.monotonic() + 30.0
        while not fut.done() and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
        self.node.destroy_client(client)
        return bool(fut.done() and fut.result().success)

    def stream(self, rate_hz: float, seconds: float) -> None:
        """Publish at `rate_hz` from a deadline thread while this thread spins the executor."""
        stop = threading.Event()
        rng = np.random.default_rng(0)
        period_ns = int(1e9 / rate_hz)

        def run() -> None:
            deadline = time.monotonic_ns()
            while not stop.is_set():
                deadline += period_ns
                delay = deadline - time.monotonic_ns()
                if delay > 0:
                    time.sleep(delay / 1e9)
                for k, pub in self.obs_pubs.items():
                    pub.publish(self.F64(data=rng.normal(0, 0.1, self.obs_sizes[k]).tolist()))
                msg = self.JointState(
                    name=["bench_seq", *self.joints],
                    position=[float(self.seq), *self.pose],
                    velocity=[0.0] * (len(self.joints) + 1),
                )
                msg.header.stamp = self.node.get_clock().now().to_msg()
                now = time.monotonic_ns()
                self.sent_ns.append(now)
                self.sent_by_seq[self.seq] = now
                self.js_pub.publish(msg)
                self.seq += 1

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.spin_for(seconds)
        stop.set()
        thread.join()
        self.spin_for(0.3)


def _percentiles(ms: np.ndarray, period_ms: float) -> dict[str, float]:
    if len(ms) == 0:
        return {"n": 0}
    p50, p99, p999 = np.percentile(ms, [50, 99, 99.9])
    return {
        "n": len(ms),
        "p50_ms": round(float(p50), 4),
        "p99_ms": round(float(p99), 4),
        "p999_ms": round(float(p999), 4),
        "max_ms": round(float(ms.max()), 3),
        "deadline_miss_rate": round(float(np.mean(ms > period_ms)), 5),
    }


def _round_trip(sent: np.ndarray, received: np.ndarray) -> np.ndarray:
    """Each command is matched to the latest joint state sent before it (unambiguous while RTT < period)."""
    idx = np.searchsorted(sent, received, side="right") - 1
    ok = idx >= 0
    return (received[ok] - sent[idx[ok]]) / 1e6


def run_rate(
    bundle: Path,
    rate: int,
    seconds: float,
    record: bool,
    work: Path,
    env: dict[str, str],
    joints: list[str],
    layout: dict[str, list[int]],
    cbf: bool = False,
    executor: str = DEFAULT_EXECUTOR,
) -> dict[str, Any]:
    """One measurement: policy node + echo node answering the same stream at `rate` (`cbf`: with the barrier link),
    both spinning on `executor` (ros_nodes/executors.py)."""
    tag = f"{rate}hz{'_rec' if record else ''}{'_cbf' if cbf else ''}_{executor}"
    env = {**env, EXECUTOR_ENV: executor}
    stats_path = work / f"stats_{tag}.json"
    echo_out = work / f"echo_{tag}.npy"
    params = [
        "-p",
        f"bundle_dir:={bundle}",
        "-p",
        "trigger:=joint_states",
        "-p",
        f"control_hz:={rate}",
        "-p",
        f"stats_path:={stats_path}",
        # at 500 Hz a 3-period staleness window is 6 ms: the stream is steady, keep the default rule
    ]
    if record:
        params += ["-p", f"record_dir:={work / ('rec_' + tag)}"]
    if cbf:
        params_file = work / f"cbf_{tag}.yaml"
        params_file.write_text(json.dumps({"/**/policy_node": {"ros__parameters": CBF_PARAMS}}))  # JSON is YAML
        params += ["--params-file", str(params_file)]
    policy = subprocess.Popen(
        [sys.executable, "-m", "ros_nodes.policy_node", "--ros-args", *params],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    echo = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "bench" / "ros_echo_node.py"), "--out", str(echo_out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = Driver(layout, joints)
    try:
        if not driver.change_state(1) or not driver.change_state(3):  # configure, activate
            raise RuntimeError(f"policy node did not activate: {policy.stderr.read() if policy.poll() else ''}")
        driver.stream(rate, WARMUP_S)
        driver.sent_ns.clear()  # sequence numbers keep counting, so late warm-up replies are recognised
        driver.policy_rx_ns.clear()
        driver.echo_rx.clear()
        driver.stream(rate, seconds)
        driver.change_state(4)  # deactivate: the node writes its loop stats
    finally:
        for proc in (policy, echo):
            proc.send_signal(signal.SIGINT)
        for proc in (policy, echo):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        driver.node.destroy_node()
    period_ms = 1000.0 / rate
    sent = np.asarray(driver.sent_ns, dtype=np.int64)
    node_stats = json.loads(stats_path.read_text())
    echo_ns = np.load(echo_out) if echo_out.exists() else np.zeros(0, np.int64)
    echo_ms = echo_ns[int(WARMUP_S * rate) :] / 1e6
    # The echo tags its reply with the sequence number: exact matching (replies to warm-up samples are skipped).
    measured = set(range(driver.seq - len(sent), driver.seq))
    echo_rtt = np.array([(t - driver.sent_by_seq[s]) / 1e6 for t, s in driver.echo_rx if s in measured])
    return {
        "rate_hz": rate,
        "record": record,
        "cbf": cbf,
        "executor": executor,
        "seconds": seconds,
        "published": len(sent),
        "policy_node": {
            **{k: node_stats["loop"][k] for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms")},
            "deadline_miss_rate": node_stats["loop"]["deadline_miss_rate"],
            "ticks": node_stats["loop"]["ticks"],
            "safety": node_stats.get("safety", {}),
            "recorder": node_stats.get("recorder", {}),
        },
        "echo": _percentiles(echo_ms, period_ms),
        "round_trip_policy": _percentiles(_round_trip(sent, np.asarray(driver.policy_rx_ns, np.int64)), period_ms),
        "round_trip_echo": _percentiles(echo_rtt, period_ms),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rates", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--no-record-run", action="store_true", help="skip the recording-on runs")
    ap.add_argument("--no-cbf-run", action="store_true", help="skip the runs with the cbf link in the chain")
    ap.add_argument(
        "--executors",
        nargs="+",
        default=[DEFAULT_EXECUTOR],
        choices=EXECUTORS,
        help="executor kinds to measure (policy node and echo on the same one); the recording and cbf variants run "
        "on the first only",
    )
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--from-json", type=Path, help="re-render node_latency.md from this JSON (no measurement)")
    args = ap.parse_args(argv)
    if args.from_json:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        write_markdown(json.loads(args.from_json.read_text()), args.out_dir / "node_latency.md")
        return 0
    domain = apply_isolated_ros_env()
    env = isolated_ros_env(domain)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    import rclpy

    t_start = time.time()
    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = make_bundle(work / "bundle")
        manifest = json.loads((bundle / "manifest.json").read_text())
        robot = manifest["policy_spec"]["robot"]
        layout = {e["name"]: e["shape"] for e in robot["observation"]}
        rclpy.init()
        try:
            for rate in args.rates:
                variants = [(False, False)] + ([] if args.no_record_run else [(True, False)])
                variants += [] if args.no_cbf_run else [(False, True)]
                runs = [(r, c, args.executors[0]) for r, c in variants]
                runs += [(False, False, kind) for kind in args.executors[1:]]
                for record, cbf, kind in runs:
                    res = run_rate(
                        bundle, rate, args.seconds, record, work, env, robot["joint_names"], layout, cbf, kind
                    )
                    results.append(res)
                    p, e = res["policy_node"], res["echo"]
                    label = " +rec" if record else " +cbf" if cbf else f" {kind}"
                    print(
                        f"{rate:>4} Hz{label}  policy p50 {p['p50_ms']:.3f} p99 "
                        f"{p['p99_ms']:.3f} ms miss {p['deadline_miss_rate']:.4%} | echo p99 "
                        f"{e.get('p99_ms', float('nan')):.3f} ms | RTT policy p99 "
                        f"{res['round_trip_policy'].get('p99_ms', float('nan')):.3f} echo "
                        f"{res['round_trip_echo'].get('p99_ms', float('nan')):.3f} ms",
                        flush=True,
                    )
        finally:
            rclpy.shutdown()
            cleanup_fastdds_shm()
    data = {
        "command": "python bench/node_latency.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.time() - t_start, 1),
        "targets": {str(k): v for k, v in TARGETS.items()},
        "runs": results,
    }
    for res in results:  # the issue's flat figures: per rate, without recording, the default chain, first executor
        if res["record"] or res.get("cbf") or res.get("executor", DEFAULT_EXECUTOR) != args.executors[0]:
            continue
        key = str(res["rate_hz"])
        p = res["policy_node"]
        data[key] = {
            "p50_ms": p["p50_ms"],
            "p99_ms": p["p99_ms"],
            "p999_ms": p["p999_ms"],
            "deadline_miss_rate": p["deadline_miss_rate"],
            "echo": res["echo"],
            "target_met": bool(
                p["p99_ms"] <= TARGETS.get(res["rate_hz"], {}).get("p99_ms", 1.0)
                and p["deadline_miss_rate"] <= TARGETS.get(res["rate_hz"], {}).get("deadline_miss_rate", 0.01)
            ),
        }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "node_latency.json").write_text(json.dumps(data, indent=2) + "\n")
    write_markdown(data, args.out_dir / "node_latency.md")
    return 0


def write_markdown(data: dict[str, Any], path: Path) -> None:
    """The table with the command on top."""
    lines = [
        "# Policy node latency vs a bare rclpy echo node",
        "",
        "```",
        data["command"],
        "```",
        "",
        f"Machine: {data['machine']}, Python {data['python']}; load average before {data['load_avg_before']},"
        f" after {data['load_avg_after']}; whole run {data['wall_s']} s.",
        "",
        "Node-internal time = `/joint_states` callback entry → command published (policy node: observation "
        "assembly + ONNX 2x256 actor + safety chain + publish; echo: one publish). Round trip = driver "
        "publish → command received (two DDS hops on loopback). Deadline miss = later than one period.",
        "",
        "| rate | executor | recording | chain | policy p50 ms | policy p99 ms | policy p99.9 ms | policy misses "
        "| echo p99 ms | RTT policy p50/p99 ms | RTT echo p50/p99 ms | samples |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["runs"]:
        p, e, rp, re_ = r["policy_node"], r["echo"], r["round_trip_policy"], r["round_trip_echo"]
        lines.append(
            f"| {r['rate_hz']} Hz | {r.get('executor', DEFAULT_EXECUTOR)} | "
            f"{'on' if r['record'] else 'off'} | {'+ cbf' if r.get('cbf') else 'default'} | "
            f"{p['p50_ms']:.3f} | {p['p99_ms']:.3f} | "
            f"{p['p999_ms']:.3f} | {p['deadline_miss_rate']:.3%} | {e.get('p99_ms', float('nan')):.3f} | "
            f"{rp.get('p50_ms', float('nan')):.3f} / {rp.get('p99_ms', float('nan')):.3f} | "
            f"{re_.get('p50_ms', float('nan')):.3f} / {re_.get('p99_ms', float('nan')):.3f} | {p['ticks']} |"
        )
    targets = data["targets"]
    lines += [
        "",
        "Targets (issue): "
        + "; ".join(
            f"{rate} Hz: p99 ≤ {t['p99_ms']:g} ms and deadline misses ≤ {100 * t['deadline_miss_rate']:g}%"
            for rate, t in targets.items()
        )
        + ".",
    ]
    lines += ["", "Reading:"]
    cores = re.search(r"(\d+) cores", data["machine"])
    for r in data["runs"]:
        if r["record"] or r.get("cbf"):
            continue
        p, e = r["policy_node"], r["echo"]
        lines.append(
            f"* {r['rate_hz']} Hz, {r.get('executor', DEFAULT_EXECUTOR)} executor: the bare"
            f" echo node's own callback→publish time is p50 {e['p50_ms']:.3f} / p99 "
            f"{e['p99_ms']:.3f} ms, so the policy, the safety chain and our node code add about "
            f"{p['p50_ms'] - e['p50_ms']:.3f} ms at p50 and {p['p99_ms'] - e['p99_ms']:.3f} ms at p99; the rest "
            "of the policy node's p99 is the same scheduling noise the echo sees (3 busy processes plus the DDS "
            f"threads on {cores.group(1) + ' cores' if cores else 'this machine'})."
        )
    lines += [f"* {text}" for text in executor_verdict(data["runs"])]
    lines += [f"* {text}" for text in recording_effect(data["runs"])]
    lines += [f"* {text}" for text in cbf_effect(data["runs"])]
    for key in targets:
        if key in data:
            lines.append(
                f"* {key} Hz: target {'met' if data[key]['target_met'] else 'MISSED'} "
                f"(p99 {data[key]['p99_ms']:.3f} ms, misses {data[key]['deadline_miss_rate']:.3%})."
            )
    path.write_text("\n".join(lines) + "\n")


def executor_verdict(runs: list[dict[str, Any]]) -> list[str]:
    """Which executor the policy node should default to, by the rule: another executor replaces the default only
    if, at every rate measured, its policy p99 is lower and its deadline misses are no higher (one run each, so a
    win at one rate and a loss at another is no evidence)."""
    plain = [r for r in runs if not r["record"] and not r.get("cbf")]
    by_rate: dict[int, dict[str, dict[str, Any]]] = {}
    for r in plain:
        by_rate.setdefault(r["rate_hz"], {})[r.get("executor", DEFAULT_EXECUTOR)] = r["policy_node"]
    kinds = sorted({k for per in by_rate.values() for k in per} - {DEFAULT_EXECUTOR})
    if not kinds or any(DEFAULT_EXECUTOR not in per for per in by_rate.values()):
        return []
    out = []
    for kind in kinds:
        cells, wins = [], True
        for rate, per in sorted(by_rate.items()):
            if kind not in per:
                wins = False
                continue
            d, k = per[DEFAULT_EXECUTOR], per[kind]
            cells.append(
                f"{rate} Hz p99 {k['p99_ms']:.3f} vs {d['p99_ms']:.3f} ms, misses {k['deadline_miss_rate']:.3%} vs "
                f"{d['deadline_miss_rate']:.3%}"
            )
            wins = wins and k["p99_ms"] < d["p99_ms"] and k["deadline_miss_rate"] <= d["deadline_miss_rate"]
        verdict = (
            "better at every rate: make it the default (`ros_nodes/executors.py`)"
            if wins
            else f"not better at every rate: `{DEFAULT_EXECUTOR}` stays the default"
        )
        out.append(f"Executor `{kind}` against `{DEFAULT_EXECUTOR}` (policy node): {'; '.join(cells)}: {verdict}.")
    return out


def paired_runs(runs: list[dict[str, Any]], variant: str) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    """Per rate, the (off, on) runs of one variant (`record` or `cbf`), the other variant off in both and both on
    the same executor (the variants run on the first executor only; the other executors' plain runs are not their
    baseline)."""
    other = "cbf" if variant == "record" else "record"
    by_key: dict[tuple[int, str], dict[bool, dict[str, Any]]] = {}
    for r in runs:
        if not r.get(other):
            key = (r["rate_hz"], r.get("executor", DEFAULT_EXECUTOR))
            by_key.setdefault(key, {})[bool(r.get(variant))] = r
    return {rate: (p[False], p[True]) for (rate, _), p in by_key.items() if False in p and True in p}


def beyond_noise(off: dict[str, Any], on: dict[str, Any], cost: str, none: str) -> tuple[float, float, str]:
    """(policy p99 change, echo p99 change, verdict) of one off/on pair, by the rule: the echo node does neither
    thing, so its p99 change between the two runs is run-to-run noise, and the policy node's change counts as
    measured only beyond it. `cost` names what a measured rise means, `none` what a measured fall means."""
    d_policy = on["policy_node"]["p99_ms"] - off["policy_node"]["p99_ms"]
    if "p99_ms" not in on["echo"] or "p99_ms" not in off["echo"]:  # the echo node answered nothing we could time
        return d_policy, float("nan"), "not judged: the echo node has no samples in one of the two runs"
    d_echo = on["echo"]["p99_ms"] - off["echo"]["p99_ms"]
    if abs(d_policy) <= abs(d_echo):
        verdict = "within that run-to-run noise"
    elif d_policy > 0:
        verdict = f"{d_policy - abs(d_echo):.3f} ms beyond that noise: {cost}"
    else:
        verdict = f"lower by more than that noise: {none}"
    return d_policy, d_echo, verdict


def recording_effect(runs: list[dict[str, Any]]) -> list[str]:
    """What recording does to the policy node's p99, judged against the run-to-run spread of the same pair of runs
    (`beyond_noise`: the echo node records nothing, so its change is the noise; otherwise "within the run-to-run
    noise")."""
    out = []
    for rate, (off, on) in paired_runs(runs, "record").items():
        d_policy, d_echo, verdict = beyond_noise(
            off, on, "recording costs the loop time at this rate", "no cost of recording is measurable at this rate"
        )
        pct = 100 * d_policy / off["policy_node"]["p99_ms"]
        out.append(
            f"{rate} Hz, recording on vs off: policy p99 {d_policy:+.3f} ms ({pct:+.0f}%); the echo node, which "
            f"records nothing, moved {d_echo:+.3f} ms between the same two runs (run-to-run noise): {verdict}."
        )
    if out:
        out.insert(
            0,
            "Recording (rule: the echo node records nothing, so its p99 change between the recording-off and "
            "recording-on runs is the run-to-run noise; recording's effect on the policy node counts only beyond it):",
        )
        out.append(
            "`record_step` copies and queues the step; the MCAP writing happens on the recorder's thread (its "
            "per-call cost is in [recorder_throughput.md](recorder_throughput.md))."
        )
    return out


def cbf_effect(runs: list[dict[str, Any]]) -> list[str]:
    """What the `cbf` link adds to the policy node's p99 (recording off both times), by the same rule."""
    out = []
    for rate, (off, on) in paired_runs(runs, "cbf").items():
        d_policy, d_echo, verdict = beyond_noise(off, on, "the added p99", "no added p99 is measurable at this rate")
        d_p50 = on["policy_node"]["p50_ms"] - off["policy_node"]["p50_ms"]
        counters = on["policy_node"].get("safety", {})  # the node's safety counters, flat: link -> count
        changed = {k: v for k, v in counters.items() if str(k).startswith("cbf")}
        out.append(
            f"{rate} Hz, CBF link on vs off: policy p50 {d_p50:+.3f} ms, p99 {d_policy:+.3f} ms; the echo node moved "
            f"{d_echo:+.3f} ms between the same two runs: {verdict}"
            + (f" (CBF counters: {changed})" if changed else "")
            + "."
        )
    if out:
        out.insert(
            0,
            "CBF link (docs/safety.md's pillar, moved up to the hand, and floor; same rule as for recording, the "
            "echo node's change is the noise):",
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
