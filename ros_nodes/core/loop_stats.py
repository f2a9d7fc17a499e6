"""Control-loop timing statistics (latency percentiles, deadline misses) kept in preallocated arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoopSummary:
    """Timing of a control loop over its recorded ticks."""

    ticks: int
    """Ticks measured."""
    p50_ms: float
    """Median latency (observation arrival or deadline → command published), ms."""
    p99_ms: float
    """99th percentile latency, ms."""
    p999_ms: float
    """99.9th percentile latency, ms."""
    max_ms: float
    """Worst latency, ms."""
    deadline_misses: int
    """Ticks whose command went out after the next period had begun."""

    @property
    def deadline_miss_rate(self) -> float:
        """Fraction of ticks that missed their deadline."""
        return self.deadline_misses / self.ticks if self.ticks else 0.0

    def to_json(self) -> dict[str, float | int]:
        return {
            "ticks": self.ticks,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "max_ms": self.max_ms,
            "deadline_misses": self.deadline_misses,
            "deadline_miss_rate": self.deadline_miss_rate,
        }


class LoopStats:
    """Ring buffer of per-tick latencies (ns); a tick misses its deadline when latency exceeds the period."""

    def __init__(self, period_s: float, capacity: int = 1 << 20) -> None:
        self.period_ns = int(period_s * 1e9)
        self._lat_ns = np.zeros(capacity, dtype=np.int64)
        self._n = 0
        self.misses = 0

    def add(self, latency_ns: int) -> None:
        """Record one tick's latency."""
        self._lat_ns[self._n % len(self._lat_ns)] = latency_ns
        self._n += 1
        if latency_ns > self.period_ns:
            self.misses += 1

    def reset(self) -> None:
        self._n = 0
        self.misses = 0

    def summary(self) -> LoopSummary:
        """Percentiles over the recorded ticks (the most recent `capacity` of them)."""
        n = min(self._n, len(self._lat_ns))
        if n == 0:
            return LoopSummary(0, 0.0, 0.0, 0.0, 0.0, 0)
        lat_ms = self._lat_ns[:n] / 1e6
        p50, p99, p999 = np.percentile(lat_ms, [50, 99, 99.9])
        return LoopSummary(self._n, float(p50), float(p99), float(p999), float(lat_ms.max()), self.misses)
