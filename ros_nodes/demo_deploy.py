"""The main job's last stage: deploy a bundle in ROS 2 against the simulated robot, from the launch file.

Brings up `launch/sim_deploy.launch.xml` (sim robot + policy node + scripted operator) exactly as
`robot-rl deploy` does, on a private ROS domain on loopback, with the safety chain on, a scripted human takeover in
the middle of the run and MCAP recording; then reads the node's stats and the recorded episodes back and returns a
summary (task success, loop latency, deadline misses, safety activations, intervention steps).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "sim_deploy.launch.xml"


def deploy_in_sim(
    bundle: Path,
    env_id: str,
    out_dir: Path,
    *,
    duration_s: float = 20.0,
    takeover_s: float = 2.0,
    log: TextIO | None = None,
) -> dict[str, Any]:
    """Run the deployment for `duration_s` and summarize it; raises RuntimeError if the graph did not come up."""
    from robot_rl.data.mcap_reader import list_episodes, read_episode
    from ros_nodes import bringup
    from ros_nodes.launch_subset import parse

    out_dir.mkdir(parents=True, exist_ok=True)
    record_dir, stats_path = out_dir / "episodes", out_dir / "policy_node_stats.json"
    log_path = out_dir / "deploy.log"
    args = {
        "bundle": str(bundle.resolve()),
        "env_id": env_id,
        "teleop": "false",
        "scripted_takeover": "true",
        # The operator starts with the graph; the policy is active about a second later. Take over mid-run.
        "takeover_start_s": repr(float(duration_s / 2)),
        "takeover_duration_s": repr(float(takeover_s)),
        "record_dir": str(record_dir.resolve()),
        "stats_path": str(stats_path.resolve()),
    }
    with log_path.open("w") as fh:
        result = bringup.run(parse(LAUNCH_FILE, args), duration_s=duration_s, out=log or fh)
    if not result.reached_active or not stats_path.exists():
        raise RuntimeError(
            f"ROS 2 deployment did not run: {result.lifecycle_error or result.child_error} (node log: {log_path})"
        )
    stats = json.loads(stats_path.read_text())
    episodes = [read_episode(p) for p in list_episodes(record_dir)]
    loop = stats["loop"]
    safety = {k: v for k, v in stats.get("safety", {}).items() if v}
    done = stats.get("episodes", 0)
    return {
        "ros_episodes_finished": done,
        "ros_task_success_rate": round(stats.get("successes", 0) / done, 2) if done else None,
        "ros_loop_p50_ms": round(loop["p50_ms"], 3),
        "ros_loop_p99_ms": round(loop["p99_ms"], 3),
        "ros_deadline_misses": f"{loop['deadline_misses']} of {loop['ticks']} ticks",
        **_chunk_summary(stats.get("chunks", {})),
        "ros_safety_activations": safety or "none",
        "ros_intervention_steps": stats.get("intervention_steps", 0),
        "ros_recorded_episodes": len(episodes),
        "ros_recorded_intervention_steps": int(sum(int(e.intervention.sum()) for e in episodes)),
        "ros_node_exit_codes": result.exit_codes,
        "ros_recording": str(record_dir),
    }


def _chunk_summary(chunks: dict[str, Any]) -> dict[str, Any]:
    """The node's chunk counters, for a chunked bundle (H > 1) only: a plain bundle's summary stays as it was."""
    if chunks.get("chunk_size", 1) <= 1:
        return {}
    latency_s = chunks.get("last_plan_latency_s")
    return {
        "ros_chunk_execution": f"{chunks['mode']}{' async' if chunks['asynchronous'] else ''}, "
        f"H={chunks['chunk_size']}, H_a={chunks['horizon']}, T_o={chunks['obs_history']}",
        "ros_chunk_plans": chunks["plans"],
        "ros_chunk_async_plans": chunks["async_plans"],
        "ros_chunk_late_chunks": chunks["late_chunks"],
        "ros_chunk_missed_actions": chunks["missed_actions"],
        "ros_chunk_last_plan_latency_ms": None if latency_s is None else round(1e3 * latency_s, 3),
    }
