"""bench/node_latency.py's reading when several executors ran: each variant is judged against the plain run on its
own executor, and the executor verdict follows its stated rule."""

from __future__ import annotations

from typing import Any

from tests.bench.bench_loader import load_bench

nl = load_bench("node_latency")


def run(rate: int, executor: str, p99: float, misses: float = 0.0, **variant: bool) -> dict[str, Any]:
    return {
        "rate_hz": rate,
        "executor": executor,
        "record": variant.get("record", False),
        "cbf": variant.get("cbf", False),
        "policy_node": {"p99_ms": p99, "deadline_miss_rate": misses},
        "echo": {"p99_ms": 1.0},
    }


def test_a_variant_is_paired_with_the_plain_run_on_its_own_executor() -> None:
    single, events = run(100, "single", 2.0), run(100, "events", 1.5)
    cbf = run(100, "single", 2.5, cbf=True)
    for order in ([single, cbf, events], [events, cbf, single]):  # the other executor's run never becomes the baseline
        assert nl.paired_runs(order, "cbf") == {100: (single, cbf)}


def test_an_executor_replaces_the_default_only_when_better_at_every_rate() -> None:
    mixed = [run(100, "single", 2.0), run(100, "events", 1.5), run(500, "single", 1.0), run(500, "events", 1.2)]
    (line,) = nl.executor_verdict(mixed)
    assert "`events` against `single`" in line and "`single` stays the default" in line
    better = [run(100, "single", 2.0), run(100, "events", 1.5), run(500, "single", 1.0), run(500, "events", 0.9)]
    assert "make it the default" in nl.executor_verdict(better)[0]
    more_misses = [run(100, "single", 2.0), run(100, "events", 1.5, misses=0.01)]
    assert "stays the default" in nl.executor_verdict(more_misses)[0]
    assert nl.executor_verdict([run(100, "single", 2.0)]) == []  # one executor: nothing to compare
