"""Pieces the benchmarks share: the percentile summary of a latency sample, the CPU's name, and the IQM with its
bootstrap interval over seeds, merging the shards of a bench run side by side."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Re-exported (the bench scripts import them from here); they live in the package so `robot-rl sweep` shares them.
from robot_rl.core.stats import bootstrap_ci as bootstrap_ci
from robot_rl.core.stats import iqm as iqm


def latency_summary_us(us: np.ndarray) -> dict[str, float]:
    """Percentiles of a latency sample in µs (n, mean, p50, p90, p99, p99.9, max); {} for an empty sample."""
    if us.size == 0:
        return {}
    p50, p90, p99, p999 = np.percentile(us, [50, 90, 99, 99.9])
    return {
        "n": int(us.size),
        "mean_us": round(float(us.mean()), 2),
        "p50_us": round(float(p50), 2),
        "p90_us": round(float(p90), 2),
        "p99_us": round(float(p99), 2),
        "p99_9_us": round(float(p999), 2),
        "max_us": round(float(us.max()), 2),
    }


def parse_task(task: str) -> tuple[str, str]:
    """`ENV[:BACKEND]` → (env id, backend); the env id may itself hold no colon."""
    env, _, backend = task.partition(":")
    return env, backend


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def render_or_merge(
    from_json: Path | None,
    merge_paths: Sequence[Path] | None,
    out_dir: Path,
    write_report: Callable[..., None],
    merge: Callable[[Sequence[Path]], dict[str, Any]],
) -> bool:
    """The `--from-json` (re-render the markdown, no run) and `--merge` (combine shards) modes of a sharded bench
    script; True when one of them ran (the script is then done)."""
    if from_json:
        write_report(json.loads(from_json.read_text()), out_dir, write_json=False)
        return True
    if merge_paths:
        write_report(merge(merge_paths), out_dir)
        return True
    return False


def merge_shards(
    paths: Sequence[Path], same: Sequence[str], run_key: Callable[[dict[str, Any]], tuple[Any, ...]], script: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Read shard JSONs run side by side: (shards, their runs in order, the merged command). Refuses shards that
    differ in any `same` key (they measured different things) or hold the same run twice (`run_key`)."""
    shards = [json.loads(p.read_text()) for p in paths]
    for sh in shards[1:]:
        diff = [k for k in same if sh.get(k) != shards[0].get(k)]
        if diff:
            raise SystemExit(f"shards differ in {diff}: they measured different things")
    seen: set[tuple[Any, ...]] = set()
    runs = []
    for sh in shards:
        for r in sh["runs"]:
            key = run_key(r)
            if key in seen:
                raise SystemExit(f"{key} appears in more than one shard")
            seen.add(key)
            runs.append(r)
    command = "\n".join(sh["command"] for sh in shards) + f"\npython {script} --merge " + " ".join(map(str, paths))
    return shards, runs, command
