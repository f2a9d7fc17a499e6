"""Smoke test of bench/safety_chain.py: a tiny run writes the documented JSON and Markdown (timings not checked)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "safety_chain.py"


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_safety_chain", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_schema(tmp_path: Path) -> None:
    bench = _load_bench()
    bench.main(["--samples", "200", "--warmup", "20", "--out-dir", str(tmp_path)])

    report = json.loads((tmp_path / "safety_chain.json").read_text())
    for key in ("p50_us", "p99_us", "p99_9_us", "max_us", "target_p99_us", "target_met", "command", "machine"):
        assert key in report, key
    assert report["target_p99_us"] == 20 and isinstance(report["target_met"], bool)
    for key in ("chain", "peer_clip_isfinite", "fk_stub_alone"):
        assert {"p50_us", "p99_us", "p99_9_us", "max_us", "n"} <= set(report[key]), key
    assert report["chain"]["n"] == 200 and report["p99_us"] == report["chain"]["p99_us"]
    assert set(report["ratio_chain_over_peer"]) == {"p50", "p99"}
    assert 0.0 < report["workload"]["fraction_changed"] < 1.0  # some commands were clipped, most passed
    assert report["workload"]["fraction_held"] == 0.0
    md = (tmp_path / "safety_chain.md").read_text()
    assert "bench/safety_chain.py --samples 200" in md and "| method |" in md
