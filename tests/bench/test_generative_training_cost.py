"""bench/generative_training_cost.py's pure parts on hand-made records: the per-round ratios against the peer, the
rotation, the warm figure from metrics.jsonl, and the markdown (command, methods, figures). No training, no timing."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.bench.bench_loader import load_bench


@pytest.fixture(scope="module")
def cost() -> ModuleType:
    return load_bench("generative_training_cost")


# steps/s per round; round 1 is "noisy" (everything faster), so the median of per-round ratios differs from the
# ratio of medians: flow's is median(0.5, 0.4, 0.4) = 0.4, not 50 / 100.
UPS = {
    0: {"bc_chunk": 100.0, "flow": 50.0, "meanflow": 10.0},
    1: {"meanflow": 30.0, "bc_chunk": 200.0, "flow": 80.0},
    2: {"flow": 40.0, "meanflow": 10.0, "bc_chunk": 100.0},
}
ALGO = {"bc_chunk": "bc", "flow": "flow", "meanflow": "meanflow"}


def _records(updates: int = 500) -> list[dict[str, Any]]:
    return [
        {
            "round": rnd,
            "method": m,
            "algo": ALGO[m],
            "updates": updates,
            "train_wall_s": round(updates / ups, 3),
            "updates_per_s": ups,
            "warm_updates_per_s": ups * 1.1,
            "call_wall_s": round(updates / ups + 2.0, 2),
            "load_avg_1m_before": 1.5 + rnd,
        }
        for rnd, by in UPS.items()
        for m, ups in by.items()
    ]


def _report(cost: ModuleType, records: list[dict[str, Any]], rounds: int = 3, updates: int = 500) -> dict[str, Any]:
    config = {"env": "robot_rl/PandaPush-v0", "methods": list(ALGO), "updates": updates, "rounds": rounds}
    config["warmup_updates"] = 20
    machine = {"cpu_model": "Test CPU", "logical_cpus": 2, "torch_threads": 1, "python": "3.11", "torch": "2.x"}
    dataset = {"dataset_episodes": 200, "dataset_transitions": 20_000, "dataset_success_rate": 1.0}
    command = ".venv/bin/python bench/generative_training_cost.py --rounds 3"
    report: dict[str, Any] = cost.build_report(records, config, command, machine, dataset)
    return report


def test_ratios_are_per_round_then_median(cost: ModuleType) -> None:
    s = cost.summarize(_records())
    assert list(s) == ["bc_chunk", "flow", "meanflow"]  # table order, whatever order the rounds ran in
    assert s["bc_chunk"]["ratio_to_peer_median"] == 1.0
    assert s["flow"]["ratio_to_peer_median"] == pytest.approx(0.4)
    assert s["meanflow"]["ratio_to_peer_median"] == pytest.approx(0.1)
    assert s["flow"]["ratio_to_peer_rounds"] == 3
    assert s["flow"]["updates_per_s_median"] == 50.0
    assert (s["flow"]["updates_per_s_min"], s["flow"]["updates_per_s_max"]) == (40.0, 80.0)
    assert s["flow"]["train_wall_s_median"] == pytest.approx(10.0)
    assert s["flow"]["warm_updates_per_s_median"] == pytest.approx(55.0)
    assert s["meanflow"]["rounds"] == 3 and s["meanflow"]["updates"] == [500]


def test_without_the_peer_there_is_no_ratio(cost: ModuleType) -> None:
    s = cost.summarize([r for r in _records() if r["method"] != "bc_chunk"])
    assert s["flow"]["ratio_to_peer_median"] is None and s["flow"]["ratio_to_peer_rounds"] == 0


def test_rounds_rotate_the_order(cost: ModuleType) -> None:
    methods = ["bc", "bc_chunk", "flow"]
    assert [cost.rotated(methods, r) for r in range(4)] == [
        ["bc", "bc_chunk", "flow"],
        ["bc_chunk", "flow", "bc"],
        ["flow", "bc", "bc_chunk"],
        ["bc", "bc_chunk", "flow"],
    ]


def test_warm_figure_leaves_out_the_first_log_interval(cost: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"step": 50, "wall_s": 2.0, "loss/bc": 1.0, "time/updates_per_s": 25.0},
        {"step": 100, "wall_s": 3.0, "time/updates_per_s": 33.3},
        {"step": 100, "wall_s": 3.0, "eval/mean_return": 1.0},  # an evaluation line: no rate, ignored
        {"step": 500, "wall_s": 7.0, "time/updates_per_s": 71.4},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert cost.warm_updates_per_s(path) == pytest.approx(450 / 5.0)
    path.write_text(json.dumps(lines[0]) + "\n")
    assert cost.warm_updates_per_s(path) is None


def test_markdown_has_the_command_methods_and_computed_figures(cost: ModuleType, tmp_path: Path) -> None:
    report = _report(cost, _records())
    md = cost.markdown(report)
    assert report["headline"] is True and "smoke run" not in md
    assert report["command"] in md.split("```")[1]
    for method in ALGO:
        assert f"| {method} | {ALGO[method]} |" in md
    assert "| flow | flow | 50.0 | 40.0–80.0 | 10.0 | 55.0 | 0.40 |" in md
    assert "`bc_chunk`: the chunked MLP" in md
    assert "Slowest: `meanflow` at 0.10× the peer's steps/s, i.e. 10.0× its time per gradient step." in md
    assert "widest min–max range over rounds is 200% of its median (`meanflow`)" in md  # (30 - 10) / 10
    assert "3 rounds;" in md and "1.50–3.50; above the 2 cores" in md
    assert "after an untimed run of 20 steps of each method" in md
    assert "(together 2.0–2.0 s per run here" in md
    # --from-json re-renders the same markdown
    (tmp_path / "in.json").write_text(json.dumps(report))
    assert cost.main(["--from-json", str(tmp_path / "in.json"), "--out-dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "generative_training_cost.md").read_text() == md


def test_a_short_run_says_it_is_a_smoke_run(cost: ModuleType) -> None:
    records = [r for r in _records(updates=20) if r["round"] == 0]
    md = cost.markdown(_report(cost, records, rounds=1, updates=20))
    assert "**1 round of 20 gradient steps: below the 3 rounds of 500 steps" in md
    assert "widest min–max" not in md  # one round: no spread to report


def test_a_distilled_method_is_timed_with_a_teacher(
    cost: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`meanflow_distill` trains against a teacher (its step runs the teacher's forward pass): the bench trains a short
    run of the teacher's method once, untimed, and hands it to every timed run; a method without one gets none."""
    calls: list[tuple[str, str, Any]] = []

    class Result:
        def __init__(self, run_dir: Path, steps: int) -> None:
            self.run_dir, self.steps, self.train_wall_s = run_dir, steps, 0.5

    def fake_train(cfg: Any, algo: str, learner: Any) -> Result:
        run_dir = cfg.out_dir / cfg.run_name
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.jsonl").write_text("")
        (run_dir / "summary.json").write_text("{}")
        calls.append((cfg.run_name, algo, getattr(learner, "teacher", None)))
        return Result(run_dir, cfg.total_steps)

    monkeypatch.setattr(cost, "train", fake_train)
    teacher_method = cost.METHODS["meanflow_distill"].teacher
    assert teacher_method
    for rnd in (0, 1):
        cost.run_one("meanflow_distill", rnd, tmp_path / "data", tmp_path / "runs", 500, 1)
    cost.run_one("flow", 0, tmp_path / "data", tmp_path / "runs", 500, 1)
    teacher_dir = tmp_path / "runs" / "teachers" / f"{cost.slug(cost.PUSH)}-{teacher_method}"
    assert calls[0] == (teacher_dir.name, cost.METHODS[teacher_method].algo, None)  # the teacher first, once
    students = [c for c in calls[1:] if "meanflow_distill" in c[0]]
    assert [c[2] for c in students] == [str(teacher_dir)] * 2
    assert calls[-1][2] is None  # flow: no teacher
    assert len(calls) == 4 and teacher_dir.is_dir()
    assert not (tmp_path / "runs" / f"{cost.slug(cost.PUSH)}-meanflow_distill-r0").exists()  # timed runs removed
