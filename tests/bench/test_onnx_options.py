"""bench/onnx_options.py: a tiny run writes the documented JSON, every variant computes OnnxPolicy's action (a variant
that does not is refused), and --from-json re-renders the markdown byte for byte. Timings are not checked."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.bench.bench_loader import load_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("onnx_options")


def test_quick_run_writes_the_report_and_from_json_reproduces_it(bench: ModuleType, tmp_path: Path) -> None:
    args = ["--quick", "--samples", "40", "--warmup", "4", "--rounds", "2", "--out-dir", str(tmp_path)]
    assert bench.main(args) == 0
    report = json.loads((tmp_path / "onnx_options.json").read_text())
    for key in ("command", "quick", "config", "model", "machine", "method", "variants", "default", "best_p99"):
        assert key in report, key
    assert report["quick"] is True and report["command"].endswith(" ".join(args))
    machine = report["machine"]
    for key in ("cpu_model", "logical_cpus", "load_avg_1m_before_after", "onnxruntime", "numpy", "python"):
        assert key in machine, key

    rows = {r["name"]: r for r in report["variants"]}
    expected = [f"{c.name}/{path}" for c in bench.CHANGES for path in bench.CALLS] + [bench.REFERENCE]
    assert list(rows) == expected
    for name, r in rows.items():
        for key in ("p50_us", "p90_us", "p99_us", "p99_9_us", "max_us", "cpu_mean_us", "process_cpu_mean_us"):
            assert math.isfinite(r[key]) and r[key] > 0, (name, key)
        assert r["n"] == 40 and len(r["p99_per_round_us"]) == 2
        assert r["parity_max_abs_diff"] <= 1e-6, name

    # runtime_default is what the robot's session runs with; every other variant differs from it, and only there.
    default = rows["runtime_default/iobinding"]["settings"]
    assert default == rows[bench.REFERENCE]["settings"] == rows["runtime_default/session_run"]["settings"]
    assert default["intra_op_num_threads"] == 1 and default["session.intra_op.allow_spinning"] == "0"
    differs = {
        "intra_op_2": {"intra_op_num_threads"},
        "spinning_on": {"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"},
        "opt_disable_all": {"graph_optimization_level"},
        "opt_basic": {"graph_optimization_level"},
        "opt_extended": {"graph_optimization_level"},
        "mem_pattern_off": {"enable_mem_pattern"},
        "cpu_mem_arena_off": {"enable_cpu_mem_arena"},
    }
    for r in rows.values():
        if r["change"] in differs:
            assert {k for k, v in r["settings"].items() if v != default[k]} == differs[r["change"]], r["name"]

    # The verdicts are computed from the rows.
    candidates = [r for r in report["variants"] if r["name"] != bench.REFERENCE]
    assert report["best_p99"]["name"] == min(candidates, key=lambda r: r["p99_us"])["name"]
    assert report["best_p50"]["name"] == min(candidates, key=lambda r: r["p50_us"])["name"]
    assert report["target"]["met"] == (rows[bench.REFERENCE]["p99_us"] <= 20.0)

    md = (tmp_path / "onnx_options.md").read_text()
    assert md.startswith("# ONNX Runtime session options") and report["command"] in md and "Smoke run" in md
    again = tmp_path / "again"
    assert bench.main(["--from-json", str(tmp_path / "onnx_options.json"), "--out-dir", str(again)]) == 0
    assert (again / "onnx_options.md").read_bytes() == md.encode()


def test_every_variant_returns_onnxpolicy_action(bench: ModuleType, tmp_path: Path) -> None:
    _, model_bytes, policy = bench.export_bundle(tmp_path / "bundle")
    obs = np.random.default_rng(1).normal(size=bench.OBS_DIM).astype(np.float32)
    expected = policy.act(obs)
    variants = bench.build_variants(model_bytes, policy)
    assert len(variants) == len(bench.CHANGES) * len(bench.CALLS) + 1
    for v in variants:
        np.testing.assert_allclose(np.ravel(v.call(obs)), expected, rtol=0, atol=1e-6, err_msg=v.name)


def test_parity_check_refuses_a_variant_that_computes_something_else(bench: ModuleType) -> None:
    obs = np.zeros((2, 3), dtype=np.float32)

    def reference(o: np.ndarray) -> np.ndarray:
        return o * 2.0

    same = bench.Variant("same", None, "session_run", {}, lambda o: (o * 2.0)[None])
    off = bench.Variant("off", None, "session_run", {}, lambda o: o * 2.0 + 1e-4)
    assert bench.check_parity([same], reference, obs) == {"same": 0.0}
    nan = bench.Variant("nan", None, "session_run", {}, lambda o: o * np.nan)
    for wrong in (off, nan):
        with pytest.raises(SystemExit, match=wrong.name):
            bench.check_parity([same, wrong], reference, obs)
