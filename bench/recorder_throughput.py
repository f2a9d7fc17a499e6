"""Episode recorder throughput vs rosbags' own rosbag2 MCAP writer, on the same step messages, same run.

Ours: `EpisodeRecorder` (bounded queue, writer thread, CDR encoding of `/robot_rl/step`, chunk flush + fsync every
`flush_period_s`, finalize + fsync + read-back verification + atomic rename at the end of the episode). Peer:
`rosbags.rosbag2.Writer` with MCAP storage writing the very same CDR payloads on the same topic (no queue, no
periodic fsync, no verification): what a plain bag writer costs. Both get a Panda-reach-sized step (27 observation
values, 7 policy + 7 executed actions, 2 reward terms). Reported: steps/s sustained through a whole episode
(including its finalize), and the time one `record_step` call costs the control loop (its p50/p99).

Usage: .venv/bin/python bench/recorder_throughput.py [--steps 20000] [--repeats 3] [--out-dir docs/benchmarks]
       .venv/bin/python bench/recorder_throughput.py --from-json docs/benchmarks/recorder_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from robot_rl.data.episode_record import STEP_TOPIC, RecorderConfig, StepRecord, encode_step  # noqa: E402
from robot_rl.data.mcap_writer import EpisodeRecorder  # noqa: E402


def make_steps(n: int, seed: int = 0) -> list[StepRecord]:
    rng = np.random.default_rng(seed)
    return [
        StepRecord(
            step=i,
            stamp_ns=1_000_000_000 + i * 50_000_000,
            observation=rng.normal(size=27),
            policy_action=rng.uniform(-1, 1, 7),
            executed_action=rng.uniform(-1, 1, 7),
            reward_terms={"rlif": 0.0, "success": float(i % 50 == 49)},
            intervention=bool(i % 100 < 10),
        )
        for i in range(n)
    ]


def run_ours(steps: list[StepRecord], directory: Path) -> dict[str, float]:
    rec = EpisodeRecorder(RecorderConfig(directory=directory, queue_size=len(steps) + 10))
    call_ns = np.empty(len(steps), dtype=np.int64)
    t0 = time.perf_counter()
    rec.start_episode({"bench": "recorder_throughput"})
    for i, s in enumerate(steps):
        c0 = time.perf_counter_ns()
        rec.record_step(s)
        call_ns[i] = time.perf_counter_ns() - c0
    rec.end_episode(terminated=False, truncated=True)
    wall = time.perf_counter() - t0
    stats = rec.stats()
    rec.close()
    return {
        "steps_per_s": len(steps) / wall,
        "wall_s": wall,
        "dropped": stats["dropped"],
        "record_call_p50_us": float(np.percentile(call_ns, 50) / 1e3),
        "record_call_p99_us": float(np.percentile(call_ns, 99) / 1e3),
    }


def run_peer(steps: list[StepRecord], directory: Path) -> dict[str, float]:
    from rosbags.rosbag2 import StoragePlugin, Writer

    from robot_rl.data.episode_record import typestore

    t0 = time.perf_counter()
    with Writer(directory / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(STEP_TOPIC, "std_msgs/msg/Float64MultiArray", typestore=typestore())
        for s in steps:
            writer.write(conn, s.stamp_ns, encode_step(s))
    wall = time.perf_counter() - t0
    return {"steps_per_s": len(steps) / wall, "wall_s": wall}


NEEDED_STEPS_PER_S = 500.0
"""What the fastest control loop here (500 Hz) needs the recorder to sustain."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--from-json", type=Path, help="re-render recorder_throughput.md from this JSON (no measurement)")
    args = ap.parse_args(argv)
    if args.from_json:
        write_markdown(json.loads(args.from_json.read_text()), args.out_dir / "recorder_throughput.md")
        return 0
    steps = make_steps(args.steps)
    ours: list[dict[str, float]] = []
    peer: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # alternate so that load from other processes hits both alike
            ours.append(run_ours(steps, Path(tmp) / f"ours{r}"))
            peer.append(run_peer(steps, Path(tmp) / f"peer{r}"))
    med = {k: float(np.median([o[k] for o in ours])) for k in ours[0]}
    med_peer = {k: float(np.median([p[k] for p in peer])) for k in peer[0]}
    data: dict[str, Any] = {
        "command": "python bench/recorder_throughput.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "steps_per_episode": args.steps,
        "repeats": args.repeats,
        "ours": {k: round(v, 2) for k, v in med.items()},
        "rosbags_mcap_writer": {k: round(v, 2) for k, v in med_peer.items()},
        "ratio_ours_vs_peer": round(med["steps_per_s"] / med_peer["steps_per_s"], 3),
        "needed_steps_per_s": NEEDED_STEPS_PER_S,
        "target_met": med["steps_per_s"] >= NEEDED_STEPS_PER_S,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "recorder_throughput.json").write_text(json.dumps(data, indent=2) + "\n")
    md = write_markdown(data, args.out_dir / "recorder_throughput.md")
    print("\n".join(md[-6:]))
    return 0


def write_markdown(data: dict[str, Any], path: Path) -> list[str]:
    """The table with the command on top; returns its lines."""
    med, med_peer = data["ours"], data["rosbags_mcap_writer"]
    needed = data.get("needed_steps_per_s", NEEDED_STEPS_PER_S)
    md = [
        "# Episode recorder throughput vs rosbags' MCAP writer",
        "",
        "```",
        data["command"],
        "```",
        "",
        f"Machine: {data['machine']}, Python {data['python']}, load average {data['load_avg']}. Median of "
        f"{data['repeats']} alternating runs of one {data['steps_per_episode']}-step episode each.",
        "",
        "| writer | steps/s (whole episode incl. finalize) | episode wall s | `record_step` p50 / p99 µs |",
        "|---|---|---|---|",
        f"| robot_rl EpisodeRecorder (queue + thread, flush+fsync every 0.5 s, verified) | "
        f"{med['steps_per_s']:,.0f} | {med['wall_s']:.2f} | {med['record_call_p50_us']:.1f} / "
        f"{med['record_call_p99_us']:.1f} |",
        f"| rosbags.rosbag2.Writer (MCAP storage, same CDR payloads, inline) | {med_peer['steps_per_s']:,.0f} | "
        f"{med_peer['wall_s']:.2f} | (writes inline) |",
        "",
        f"Ratio ours / peer: {data['ratio_ours_vs_peer']:.2f}. A 500 Hz control loop needs {needed:,.0f} steps/s: "
        f"ours sustains {med['steps_per_s'] / needed:.0f}x that. What one `record_step` call costs the control tick "
        "is the column on the right (the writing itself happens on the writer thread). The effect of recording on "
        "the policy node's loop latency is in [node_latency.md](node_latency.md) (rows with recording on).",
    ]
    path.write_text("\n".join(md) + "\n")
    return md


if __name__ == "__main__":
    sys.exit(main())
