"""Smoke test of bench/safety_chain.py: a tiny run writes the documented JSON and Markdown (timings not checked)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.bench.bench_loader import BENCH_DIR, load_bench


def test_tiny_run_writes_schema(tmp_path: Path) -> None:
    bench = load_bench("safety_chain")
    bench.main(["--samples", "200", "--warmup", "20", "--out-dir", str(tmp_path)])

    report = json.loads((tmp_path / "safety_chain.json").read_text())
    for key in ("p50_us", "p99_us", "p99_9_us", "max_us", "target_p99_us", "target_met", "command", "machine"):
        assert key in report, key
    # The stable keys README's table is rendered from: three outcomes x three percentiles, both FKs.
    for prefix in ("", "stub_fk_"):
        for outcome in ("unchanged", "clipped", "all"):
            for stat in ("p50_us", "p99_us", "p99_9_us"):
                assert isinstance(report[f"{prefix}{outcome}_{stat}"], float), f"{prefix}{outcome}_{stat}"
    assert report["target_p99_us"] == 20 and isinstance(report["target_met"], bool)
    assert "UrdfChain" in report["forward_kinematics"]  # the FK the node loads, not the stub
    for key in ("chain", "stub_fk_chain", "peer_clip_isfinite", "fk_urdf_alone", "fk_stub_alone"):
        assert {"p50_us", "p99_us", "p99_9_us", "max_us", "n"} <= set(report[key]), key
    assert report["chain"]["n"] == 200 and report["p99_us"] == report["chain"]["p99_us"] == report["all_p99_us"]
    assert report["chain_unchanged_steps"]["n"] + report["chain_clipped_steps"]["n"] == 200
    assert set(report["ratio_chain_over_peer"]) == {"p50", "p99"}
    assert set(report["ratio_urdf_over_stub_fk"]) == {"unchanged", "clipped", "all"}
    assert 0.0 < report["workload"]["fraction_changed"] < 1.0  # some commands were clipped, most passed
    assert report["workload"]["fraction_held"] == 0.0
    md = (tmp_path / "safety_chain.md").read_text()
    assert "bench/safety_chain.py --samples 200" in md and "| method |" in md
    assert f"{report['unchanged_p99_us']:.1f}" in md  # the prose and table come from the numbers


def test_urdf_and_stub_fk_chains_agree_on_the_workload() -> None:
    bench = load_bench("safety_chain")
    urdf_chain, stub_chain, urdf = bench.build_chains()
    home = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
    assert urdf_chain.config == stub_chain.config and urdf.n_joints == 7
    # Both FKs put the Panda's home pose inside the bench's box, so the workspace link never decides the timing.
    lo, hi = np.array(urdf_chain.config.workspace_lower_m), np.array(urdf_chain.config.workspace_upper_m)
    for p in (urdf.position(home), bench.fk_stub(home)):
        assert (p > lo).all() and (p < hi).all()


def test_ab_against_the_base_revision_runs_both_benches(tmp_path: Path) -> None:
    """bench/safety_chain_ab.py checks out the pre-Link chain and times both (a tiny run; timings not checked)."""
    import subprocess

    base = "02404fb"
    repo = BENCH_DIR.parent
    if subprocess.run(["git", "cat-file", "-e", f"{base}^{{commit}}"], cwd=repo, check=False).returncode != 0:
        import pytest

        pytest.skip(f"revision {base} is not in this clone (shallow?)")
    ab = load_bench("safety_chain_ab")
    report = ab.main(["--base-rev", base, "--rounds", "1", "--samples", "300", "--out-dir", str(tmp_path)])
    assert [s["series"] for s in report["series"]] == ["unchanged", "all"]
    assert all(s["base_p50_us"] > 0 and s["this_p50_us"] > 0 for s in report["series"])
    # each side really ran its own code: the base revision's JSON has no URDF-FK keys, this checkout's has
    assert "stub_fk_chain" not in report["runs"]["base"][0] and "stub_fk_chain" in report["runs"]["this"][0]
    assert (tmp_path / "safety_chain_ab.md").read_text().startswith("# Safety chain fast path")
