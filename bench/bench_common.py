"""Pieces every latency benchmark shares: the percentile summary of a sample and the CPU's name."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np


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


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
