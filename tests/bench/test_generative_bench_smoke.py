"""bench/generative_inference.py and bench/generative_success.py at tiny budgets: they write the documented JSON
keys and markdown, and their met/missed verdicts follow the numbers (hand-made data). No timing is asserted."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.bench.bench_loader import load_bench

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inference() -> ModuleType:
    return load_bench("generative_inference")


@pytest.fixture(scope="module")
def success() -> ModuleType:
    return load_bench("generative_success")


# ----------------------------------------------------------------------------- inference


def test_inference_bench_writes_every_variant_ratio_and_target(
    inference: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inference, "ROUNDS", 2)
    assert inference.main(["--samples", "4", "--warmup", "1", "--parity-samples", "8", "--out-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "generative_inference.json").read_text())
    assert {"command", "samples_per_method", "headline", "untrained", "variants", "results", "ratios", "targets",
            "model", "machine", "method"} <= set(report)  # fmt: skip
    keys = [v["key"] for v in report["variants"]]
    assert keys == ["sac_actor", "meanflow_k1", "meanflow_k2", "flow_k10", "ddim_k10"]
    assert [v["nfe"] for v in report["variants"]] == [1, 1, 2, 10, 10]
    for key in keys:
        for runtime in ("onnx", "torch_eager"):
            row = report["results"][key][runtime]
            assert row["n"] == 4 and 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"]
            assert row["cpu_p99_us"] > 0
        assert report["ratios"][key]["onnx_over_sac_onnx"]["p99"] > 0
    assert report["ratios"]["sac_actor"]["onnx_over_sac_onnx"] == {"p50": 1.0, "p99": 1.0}
    assert [t["variant"] for t in report["targets"]] == ["meanflow_k1", "flow_k10", "ddim_k10"]
    for t in report["targets"]:  # the verdict is the measured p99 against the ceiling
        assert t["met"] == (report["results"][t["variant"]]["onnx"]["p99_us"] / 1e3 <= t["p99_ms_max"])
    assert report["headline"] is False and report["model"]["chunk_size"] == 16 and report["model"]["act_dim"] == 7
    assert report["model"]["max_abs_diff_onnx_vs_torch"] < 1e-4
    md = (tmp_path / "generative_inference.md").read_text()
    assert "smoke run, not a figure to quote" in md and "`OnnxPolicy.plan`" in md and "MeanFlow, 1 step" in md
    assert report["command"] in md
    # --from-json re-renders the same markdown
    other = tmp_path / "again"
    assert inference.main(["--from-json", str(tmp_path / "generative_inference.json"), "--out-dir", str(other)]) == 0
    assert (other / "generative_inference.md").read_text() == md


def _results(p99_ms: dict[str, float], cpu_p99_ms: float = 0.1) -> dict[str, Any]:
    return {
        k: {"onnx": {"p50_us": 1e3 * v / 2, "p99_us": 1e3 * v, "cpu_p99_us": 1e3 * cpu_p99_ms}}
        for k, v in p99_ms.items()
    }


def test_inference_verdicts_follow_the_numbers(inference: ModuleType) -> None:
    fast = inference.verdicts(_results({"meanflow_k1": 0.4, "flow_k10": 4.9, "ddim_k10": 5.0}))
    assert [t["met"] for t in fast] == [True, True, True]
    slow = inference.verdicts(_results({"meanflow_k1": 0.51, "flow_k10": 5.2, "ddim_k10": 2.0}, cpu_p99_ms=0.3))
    assert [t["met"] for t in slow] == [False, False, True]
    assert [t["cpu_within"] for t in slow] == [True, True, True]  # missed on wall-clock only
    costly = inference.verdicts(_results({"meanflow_k1": 0.9}, cpu_p99_ms=0.8))
    assert costly[0] == {
        "variant": "meanflow_k1", "p99_ms_max": 0.5, "p99_ms": 0.9, "met": False, "cpu_p99_ms": 0.8,
        "cpu_within": False,
    }  # fmt: skip
    assert costly[1]["p99_ms"] is None and costly[1]["met"] is False  # not measured: not met
    ratios = inference.ratios(
        {
            "sac_actor": {"onnx": {"p50_us": 10.0, "p99_us": 20.0}},
            "flow_k10": {"onnx": {"p50_us": 50.0, "p99_us": 100.0}},
        }
    )
    assert ratios["flow_k10"]["onnx_over_sac_onnx"] == {"p50": 5.0, "p99": 5.0}


def test_committed_inference_markdown_is_rendered_from_its_json(inference: ModuleType, tmp_path: Path) -> None:
    data = REPO / "docs" / "benchmarks"
    assert inference.main(["--from-json", str(data / "generative_inference.json"), "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "generative_inference.md").read_text() == (data / "generative_inference.md").read_text()
    report = json.loads((data / "generative_inference.json").read_text())
    assert report["headline"] is True and report["samples_per_method"] >= 10_000


# ----------------------------------------------------------------------------- success


def test_success_bench_end_to_end_at_a_tiny_budget(success: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [
        "--tasks", "robot_rl/PandaReachAround-v0", "--methods", "bc_chunk", "meanflow", "meanflow_distill",
        "--seeds", "1",
        "--updates", "3", "--episodes", "2", "--eval-episodes", "1", "--parity-samples", "8", "--torch-threads", "1",
        "--out-dir", str(out), "--work-dir", str(tmp_path / "work"),
    ]  # fmt: skip
    assert success.main(argv) == 0
    report = json.loads((out / "generative_success.json").read_text())
    assert {"command", "config", "machine", "complete", "expert", "runs", "summary", "training_cost", "targets",
            "few_step_gaps"} <= set(report)  # fmt: skip
    assert report["complete"] is True
    task = "robot_rl/PandaReachAround-v0"
    expert = report["expert"][task]
    assert expert["episodes"] == 1 and expert["dataset_episodes"] == 2 and expert["dataset_transitions"] > 0
    assert 0.0 <= expert["success_rate"] <= 1.0
    methods = [(r["method"], r["seed"]) for r in report["runs"]]
    assert methods == [("bc_chunk", 0), ("meanflow", 0), ("meanflow_distill", 0)]
    for r in report["runs"]:
        assert r["updates"] == 3 and r["train_wall_s"] > 0 and r["updates_per_s"] > 0
    assert set(report["runs"][1]["eval"]) == {"meanflow/k1", "meanflow/k2"}
    distilled = report["runs"][2]
    assert set(distilled["eval"]) == {"meanflow_distill/k1", "meanflow_distill/k2"}
    assert distilled["teacher"]["method"] == "flow_x0" and distilled["teacher"]["train_wall_s"] > 0
    assert distilled["algo_config"]["teacher"].endswith("PandaReachAround-v0-flow_x0-s0-u3")
    assert (tmp_path / "work" / "teachers" / "PandaReachAround-v0-flow_x0-s0-u3" / "summary.json").is_file()
    assert set(report["summary"][task]) == {
        "bc_chunk", "meanflow/k1", "meanflow/k2", "meanflow_distill/k1", "meanflow_distill/k2", "expert"
    }  # fmt: skip
    assert report["training_cost"][task]["meanflow"]["updates"] == 3
    # on the multimodal task the 1-step MeanFlows have an absolute target; the others' variants were not run
    assert [(t["variant"], t["bound"]) for t in report["targets"]] == [
        ("meanflow/k1", 0.9),
        ("meanflow_distill/k1", 0.9),
    ]
    md = (out / "generative_success.md").read_text()
    assert "## Targets (issue 12)" in md and "## Training cost" in md and "meanflow/k1" in md
    assert "The MLP baseline on the multimodal" in md and "Partial results" not in md
    # the work dir kept the dataset; runs and bundles are removed once evaluated
    assert (tmp_path / "work" / "datasets").is_dir() and not any((tmp_path / "work" / "runs").iterdir())
    # --resume with everything done trains nothing and keeps the runs; --from-json re-renders the same markdown
    assert success.main([*argv, "--resume"]) == 0
    resumed = json.loads((out / "generative_success.json").read_text())
    assert resumed["runs"] == report["runs"] and resumed["command"].endswith("--resume")
    md = (out / "generative_success.md").read_text()
    again = tmp_path / "again"
    assert success.main(["--from-json", str(out / "generative_success.json"), "--out-dir", str(again)]) == 0
    assert (again / "generative_success.md").read_text() == md


def _summary(values: dict[str, dict[str, float]], expert: dict[str, float]) -> dict[str, Any]:
    return {
        task: {
            **{v: {"seeds": 5, "mean": m, "min": m, "max": m} for v, m in by_variant.items()},
            **({"expert": {"seeds": 0, "mean": expert[task]}} if task in expert else {}),
        }
        for task, by_variant in values.items()
    }


def test_success_targets_follow_the_numbers(success: ModuleType) -> None:
    around, push, mw = "robot_rl/PandaReachAround-v0", "robot_rl/PandaPush-v0", "robot_rl/MetaWorld-reach-v3"
    summary = _summary(
        {
            around: {"bc_chunk": 0.3, "diffusion/k10": 0.95, "flow/k10": 0.9, "meanflow/k1": 0.85},
            push: {
                "diffusion/k10": 0.72,
                "flow/k10": 0.71,
                "meanflow/k1": 0.66,
                "meanflow/k2": 0.70,
                "meanflow_distill/k1": 0.64,
            },
            mw: {"diffusion/k10": 0.9, "flow/k10": 0.8},
        },
        {around: 1.0, push: 0.8, mw: 1.0},
    )
    got = {(t["task"], t["variant"], t["rule"].split(" ")[0]): (t["met"], t["bound"]) for t in success.targets(summary)}
    assert got == {
        (around, "diffusion/k10", "success"): (True, 0.9),
        (around, "flow/k10", "success"): (True, 0.9),  # exactly at the bound: met
        (around, "meanflow/k1", "success"): (False, 0.9),
        (push, "diffusion/k10", "success"): (True, 0.72),  # 90% of the expert's 80%
        (push, "flow/k10", "success"): (False, 0.72),
        (push, "meanflow/k1", "within"): (True, 0.66),  # 5 points below flow/k10: met
        (push, "meanflow_distill/k1", "within"): (False, 0.66),  # 7 points below: missed
        (mw, "diffusion/k10", "success"): (True, 0.9),
        (mw, "flow/k10", "success"): (False, 0.9),
    }
    worse = copy.deepcopy(summary)
    worse[push]["meanflow/k1"]["mean"] = 0.65
    assert not next(t for t in success.targets(worse) if t["variant"] == "meanflow/k1" and t["task"] == push)["met"]
    no_expert = {mw: {k: v for k, v in summary[mw].items() if k != "expert"}}
    assert success.targets(no_expert) == []  # a relative target without the expert's figure is not judged
    failing_expert = copy.deepcopy(no_expert)
    failing_expert[mw]["expert"] = {"seeds": 0, "mean": 0.0}
    assert success.targets(failing_expert) == []  # nor against an expert that never succeeds (0 ≥ 0 is no verdict)
    gaps = {(g["task"], g["variant"]): g["points"] for g in success.few_step_gaps(summary)}
    assert gaps == {
        (around, "meanflow/k1"): -5.0,
        (push, "meanflow/k1"): -5.0,
        (push, "meanflow_distill/k1"): -7.0,
        (push, "meanflow/k2"): -1.0,
    }


def test_success_summary_statistics(success: ModuleType) -> None:
    assert success.iqm([0.0, 0.5, 0.6, 1.0]) == pytest.approx(0.55)
    assert success.iqm([0.2, 0.4]) == pytest.approx(0.3)
    lo, hi = success.bootstrap_ci([0.8, 0.9, 1.0, 0.9, 0.85])
    assert 0.8 <= lo <= hi <= 1.0
    runs = [
        {"task": "t", "method": "flow", "seed": s, "updates": 10, "train_wall_s": 2.0 + s, "updates_per_s": 5.0,
         "eval": {"flow/k10": {"success_rate": r}, "flow/k1": {"success_rate": r / 2}}}
        for s, r in enumerate([0.6, 0.8, 1.0])
    ]  # fmt: skip
    s = success.summarize(runs, {"t": {"success_rate": 1.0}})
    assert s["t"]["flow/k10"]["mean"] == pytest.approx(0.8) and s["t"]["flow/k10"]["seeds"] == 3
    assert (s["t"]["flow/k1"]["min"], s["t"]["flow/k1"]["max"]) == (0.3, 0.5) and s["t"]["expert"]["mean"] == 1.0
    cost = success.training_cost(runs)["t"]["flow"]
    assert cost == {"seeds": 3, "updates": 10, "train_wall_s": 3.0, "updates_per_s": 5.0}


def _shard(success: ModuleType, task: str, seeds: list[int], rate: float, command: str) -> dict[str, Any]:
    runs = [
        {"task": task, "method": "flow", "seed": s, "updates": 10, "train_wall_s": 1.0, "updates_per_s": 10.0,
         "eval": {"flow/k10": {"success_rate": rate, "episodes": 4}, "flow/k1": {"success_rate": 0.0, "episodes": 4}}}
        for s in seeds
    ]  # fmt: skip
    config = {"tasks": [task], "seeds": len(seeds), "updates": 10, "eval_episodes": 4, "eval_seed": success.EVAL_SEED}
    report: dict[str, Any] = success.build_report(
        runs, {task: {"success_rate": 1.0, "dataset_episodes": 3}}, config, command, complete=True
    )
    return report


def test_shards_merge_into_one_report_and_overlaps_are_refused(success: ModuleType, tmp_path: Path) -> None:
    around, push = "robot_rl/PandaReachAround-v0", "robot_rl/PandaPush-v0"
    a = _shard(success, push, [0, 1], 0.5, "cmd-a")
    b = _shard(success, around, [0, 1, 2], 1.0, "cmd-b")
    merged = success.merge([a, b], "cmd-merge")
    # tasks in the benchmark's table order, whatever order the shards came in
    assert [r["task"] for r in merged["runs"]] == [around] * 3 + [push] * 2
    assert merged["command"].splitlines() == ["cmd-a", "cmd-b", "cmd-merge"] and merged["complete"] is True
    assert [c["command"] for c in merged["config"]["shards"]] == ["cmd-a", "cmd-b"]
    assert merged["summary"][around]["flow/k10"]["seeds"] == 3 and merged["summary"][push]["flow/k10"]["mean"] == 0.5
    assert {(t["task"], t["met"]) for t in merged["targets"]} == {(around, True), (push, False)}
    # a merged report merges again (its shards carry their own commands, the merges that built it follow them in
    # order), and renders per-task setups
    again = success.merge([merged], "cmd-again")
    assert again["command"].splitlines() == ["cmd-a", "cmd-b", "cmd-merge", "cmd-again"]
    assert again["config"]["merge_commands"] == ["cmd-merge", "cmd-again"]
    legacy = {**merged, "config": {k: v for k, v in merged["config"].items() if k != "merge_commands"}}
    legacy["command"] = "cmd-a\ncmd-b\npython bench/generative_success.py --merge x.json"
    assert success.merge_commands(legacy) == ["python bench/generative_success.py --merge x.json"]
    assert success.merge_commands(a) == []  # a shard is not a merge
    success.write(merged, tmp_path)
    md = (tmp_path / "generative_success.md").read_text()
    assert "| PandaReachAround-v0 | 10 | 3 | 4 |" in md and "| PandaPush-v0 | 10 | 2 | 4 |" in md
    assert "2 shards run concurrently" in md and "5 of 5 runs predate the observation-scale floor" in md
    with pytest.raises(ValueError, match="more than one shard"):
        success.merge([a, _shard(success, push, [1], 0.4, "cmd-c")], "cmd")
    other_seed = _shard(success, around, [0], 1.0, "cmd-d")
    other_seed["config"]["eval_seed"] = 1
    with pytest.raises(ValueError, match="evaluation seeds"):
        success.merge([a, other_seed], "cmd")


def test_a_merge_drops_superseded_runs_and_says_so(success: ModuleType, tmp_path: Path) -> None:
    around, push = "robot_rl/PandaReachAround-v0", "robot_rl/PandaPush-v0"
    old = _shard(success, around, [0, 1], 0.2, "cmd-old")  # flow runs from before a learner change
    new = _shard(success, around, [0, 1], 1.0, "cmd-new")
    with pytest.raises(ValueError, match="more than one shard"):  # without --drop the overlap is an error
        success.merge([old, new], "cmd")
    merged = success.merge([old, new], "cmd", drop=[("flow", around)])
    # both shards' flow runs match the pair: a drop removes the (method, task) everywhere, so the new runs go too
    assert merged["runs"] == [] and merged["config"]["dropped"] == [{"method": "flow", "task": around, "runs": 4}]
    kept = success.merge([old, _shard(success, push, [0], 0.5, "cmd-push")], "cmd", drop=[("flow", around)])
    assert [r["task"] for r in kept["runs"]] == [push]
    success.write(kept, tmp_path)
    assert "Superseded runs left out of the merge (`--drop`" in (tmp_path / "generative_success.md").read_text()
    assert "flow on PandaReachAround-v0 (2)" in (tmp_path / "generative_success.md").read_text()
    with pytest.raises(ValueError, match="matched no run"):
        success.merge([old], "cmd", drop=[("meanflow", around)])
    # replacing runs: drop from the old shard first, then merge with the new one; the drop stays on record
    replaced = success.merge([success.merge([old], "cmd-drop", drop=[("flow", around)]), new], "cmd-final")
    assert replaced["summary"][around]["flow/k10"]["mean"] == 1.0
    assert replaced["config"]["dropped"] == [{"method": "flow", "task": around, "runs": 2}]
    # the drop's own merge stays in the command: the chain can be rerun from the shards
    assert replaced["command"].splitlines() == ["cmd-old", "cmd-new", "cmd-drop", "cmd-final"]
