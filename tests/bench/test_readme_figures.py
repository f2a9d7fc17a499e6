"""README's measured figures and the benchmark markdown are what the committed JSON says (issue 10, item 6).

No timing is asserted: these tests read the committed data and compare rendered text with the committed text.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from tests.bench.bench_loader import load_bench

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "docs" / "benchmarks"


@pytest.fixture(scope="module")
def figures() -> ModuleType:
    return load_bench("readme_figures")


@pytest.fixture
def copy(tmp_path: Path) -> tuple[Path, Path]:
    """A temp copy of README.md and of every JSON file the renderer reads."""
    data = tmp_path / "data"
    data.mkdir()
    for f in DATA.glob("*.json"):
        shutil.copy(f, data / f.name)
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    return readme, data


def _edit(path: Path, change: Any) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d, indent=1) + "\n")


# ----------------------------------------------------------------------------- README vs the JSON


def test_readme_figures_match_the_committed_json(figures: ModuleType) -> None:
    diff = figures.check(REPO / "README.md", DATA)
    assert diff == "", f"README.md is stale; run `python bench/readme_figures.py`:\n{diff}"


def test_every_block_is_marked_in_readme(figures: ModuleType) -> None:
    text = (REPO / "README.md").read_text()
    for name in figures.BLOCKS:
        assert f"<!-- figures:begin {name} -->" in text and f"<!-- figures:end {name} -->" in text, name


def test_a_changed_json_value_makes_the_check_fail(figures: ModuleType, copy: tuple[Path, Path]) -> None:
    readme, data = copy
    assert figures.main(["--check", "--readme", str(readme), "--data-dir", str(data)]) == 0

    def slower(d: dict[str, Any]) -> None:
        d["p50_us"] = 987.0

    _edit(data / "onnx_latency.json", slower)
    assert figures.main(["--check", "--readme", str(readme), "--data-dir", str(data)]) == 1
    assert "p50 987 µs" in figures.check(readme, data)
    # Rendering writes the new figure; then the check passes again.
    assert figures.main(["--readme", str(readme), "--data-dir", str(data)]) == 0
    assert "p50 987 µs" in readme.read_text()
    assert figures.main(["--check", "--readme", str(readme), "--data-dir", str(data)]) == 0


def test_verdicts_are_computed_from_the_numbers(figures: ModuleType, copy: tuple[Path, Path]) -> None:
    readme, data = copy

    def onnx_fast(d: dict[str, Any]) -> None:
        d["p99_us"] = d["target_p99_us"] - 1.0

    def recorder_slow(d: dict[str, Any]) -> None:
        d["ours"]["steps_per_s"] = d["needed_steps_per_s"] / 2

    before = readme.read_text()
    assert "p99 ≤ 20 µs: **missed** (a bare ORT" in before
    _edit(data / "onnx_latency.json", onnx_fast)
    _edit(data / "recorder_throughput.json", recorder_slow)
    after = figures.render(before, data)
    assert "p99 ≤ 20 µs: met (a bare ORT" in after
    assert "(a 500 Hz loop): **missed**" in after


def test_the_demo_reading_follows_the_demo_figures(figures: ModuleType, copy: tuple[Path, Path]) -> None:
    readme, data = copy

    def as_good_as_mujoco(d: dict[str, Any]) -> None:
        d["summary"]["ros_task_success_rate"] = d["summary"]["mujoco_success_rate"]

    _edit(data / "demo.json", as_good_as_mujoco)
    text = figures.render(readme.read_text(), data)
    assert "points below MuJoCo alone" not in text
    assert "it reaches 100% (8 of 8 episodes)" in text


def test_the_generative_success_row_follows_its_targets(figures: ModuleType, copy: tuple[Path, Path]) -> None:
    readme, data = copy

    def all_met(d: dict[str, Any]) -> None:
        for t in d["targets"]:
            t["met"], t["seeds"] = True, 5
        d["complete"] = True

    _edit(data / "generative_success.json", all_met)
    text = figures.render(readme.read_text(), data)
    n = len(json.loads((data / "generative_success.json").read_text())["targets"])
    row = next(line for line in text.splitlines() if line.startswith("| Generative policies vs the MLP"))
    assert f"{n} of {n} success targets met" in row and "**missed**" not in row and "fewer than 5" not in row


def test_missing_or_unknown_markers_are_refused(figures: ModuleType, copy: tuple[Path, Path]) -> None:
    readme, data = copy
    text = readme.read_text()
    with pytest.raises(figures.FiguresError, match="missing \\['benchmarks'\\]"):
        figures.render(text.replace("<!-- figures:begin benchmarks -->", ""), data)
    with pytest.raises(figures.FiguresError, match="unknown \\['nonsense'\\]"):
        figures.render(text + "<!-- figures:begin nonsense -->\n<!-- figures:end nonsense -->\n", data)
    (data / "sim2sim.json").unlink()
    assert figures.main(["--check", "--readme", str(readme), "--data-dir", str(data)]) == 2


def test_demo_figures_written_by_the_demo_render(figures: ModuleType, tmp_path: Path, copy: tuple[Path, Path]) -> None:
    """`robot-rl demo --figures-out` writes what the renderer reads."""
    from robot_rl.train.demo import write_figures

    readme, data = copy
    summary = json.loads((data / "demo.json").read_text())["summary"]
    summary = {**summary, "train_wall_s": 100.0, "steps_per_s": 180.0, "demo_wall_s": 125.0}
    args = SimpleNamespace(policy="sac", env=summary["env"], steps=18000, seed=0, deploy_s=20.0, eval_episodes=10)
    write_figures(summary, args, data / "demo.json")
    text = figures.render(readme.read_text(), data)
    assert "took **2 min 05 s** in all (training 100 s at 180 steps/s)" in text
    assert "`robot-rl demo --env robot_rl/PandaReach-v0 --steps 18000 --seed 0 --deploy-s 20`" in text


# ----------------------------------------------------------------------------- markdown vs the JSON


@pytest.mark.parametrize(
    "bench",
    [
        "node_latency",
        "sim2sim",
        "sim_speed",
        "recorder_throughput",
        "onnx_latency",
        "onnx_options",
        "generative_success",
        "generative_training_cost",
        "hil_push",
    ],
)
def test_committed_markdown_is_rendered_from_committed_json(
    bench: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / f"{bench}.json"
    shutil.copy(DATA / f"{bench}.json", src)
    argv = ["--from-json", str(src), "--out-dir", str(tmp_path)]
    module = load_bench(bench)
    if bench == "onnx_latency":  # its main() reads sys.argv
        monkeypatch.setattr("sys.argv", ["onnx_latency.py", *argv])
        module.main()
    else:
        module.main(argv)
    assert (tmp_path / f"{bench}.md").read_text() == (DATA / f"{bench}.md").read_text()
    assert json.loads(src.read_text()) == json.loads((DATA / f"{bench}.json").read_text())


def test_sac_vs_sb3_report_is_rendered_from_committed_data(tmp_path: Path) -> None:
    module = load_bench("sac_vs_sb3")
    module.report(argparse.Namespace(env="Hopper-v5", out_dir=tmp_path))
    for name in ("sac_vs_sb3.md", "sac_vs_sb3.json"):
        assert (tmp_path / name).read_text() == (DATA / name).read_text(), name


def test_node_latency_recording_verdict_follows_the_rule() -> None:
    """Recording's effect counts only beyond the echo node's run-to-run change (stated in the markdown)."""
    module = load_bench("node_latency")

    def run(record: bool, policy_p99: float, echo_p99: float) -> dict[str, Any]:
        return {"rate_hz": 100, "record": record, "policy_node": {"p99_ms": policy_p99}, "echo": {"p99_ms": echo_p99}}

    beyond = module.recording_effect([run(False, 1.0, 1.0), run(True, 1.3, 1.05)])
    within = module.recording_effect([run(False, 1.0, 1.0), run(True, 1.03, 1.05)])
    assert any("beyond that noise" in line for line in beyond)
    assert any("within that run-to-run noise" in line for line in within)
