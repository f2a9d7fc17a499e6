"""bench/residual_probe.py's pure parts: directions and their agreement, the held-out split of the rollouts, the
verdict and the markdown (every figure from the JSON). No training, no simulation."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from robot_rl.data.replay import ReplayBuffer
from tests.bench.bench_loader import load_bench


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    return load_bench("residual_probe")


def test_directions_are_unit_and_agreement_is_a_cosine(probe: ModuleType) -> None:
    v = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(probe.unit(v), [[0.6, 0.8], [0.0, 0.0]])  # a zero gradient stays zero
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert probe.mean_cosine(a, a) == pytest.approx(1.0)
    assert probe.mean_cosine(a, -a) == pytest.approx(-1.0)
    assert probe.mean_cosine(a, np.array([[0.0, 1.0], [5.0, 0.0]])) == pytest.approx(0.0)
    d0, d0_again, d1 = (probe.random_direction(e, 7) for e in (0, 0, 1))
    np.testing.assert_array_equal(d0, d0_again)  # the control is the same in every run of episode 0
    assert np.linalg.norm(d0) == pytest.approx(1.0) and not np.allclose(d0, d1)


def test_held_out_episodes_stay_out_of_the_training_buffer(probe: ModuleType) -> None:
    buf = ReplayBuffer(10, 2, 1)
    episode_of = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for i, ep in enumerate(episode_of):
        buf.add([ep, i], [0.0], -1.0, [ep, i + 1], False, i % 2 == 1)
    train, held = probe.split_buffer(buf, episode_of, 0.2)
    assert len(train) == 8 and set(train.obs[:, 0]) == {0, 1, 2, 3}
    np.testing.assert_array_equal(held[:, 0], [4, 4])
    np.testing.assert_array_equal(train.truncated, buf.truncated[:8])  # episode ends kept for the n-step rows


def _report() -> dict[str, Any]:
    return {
        "command": ".venv/bin/python bench/residual_probe.py --alphas 0.02 0.05",
        "config": {
            "expert_episodes": 10,
            "flow_updates": 6000,
            "rollout_episodes": 150,
            "rollout_noise": 0.01,
            "critics": 2,
            "ensemble": 5,
            "updates": 5000,
            "n_step": 3,
            "alphas": [0.02, 0.05],
            "eval_episodes": 40,
        },
        "machine": {"cpu_model": "Test CPU", "logical_cpus": 2},
        "results": {
            "demos": {"episodes": 10, "success_rate": 1.0},
            "base_run_success": 0.4,
            "rollouts": {"episodes": 150, "steps": 15000, "success_rate": 0.38, "held_out_states": 3000},
            "gradient_agreement": {"pairs": 1, "mean_cosine": 0.28},
            "steering": {
                "0": {"base": 0.425},
                "0.02": {"critic": 0.2, "random": 0.225},
                "0.05": {"critic": 0.075, "random": 0.025},
            },
        },
    }


def test_verdict_compares_the_critic_with_the_control_and_the_base(probe: ModuleType) -> None:
    assert probe.diff_se_points(0.5, 0.5, 50) == pytest.approx(10.0)  # sqrt(0.25 * 2 / 50) = 0.1
    v = probe.verdict(_report()["results"]["steering"], 40)
    row = v["per_alpha"]["0.02"]
    assert row["critic_minus_random_points"] == -2.5 and row["critic_minus_base_points"] == -22.5
    assert row["critic_minus_random_se_points"] == pytest.approx(
        round(100 * ((0.2 * 0.8 + 0.225 * 0.775) / 40) ** 0.5, 1)
    )
    assert v["per_alpha"]["0.05"]["critic_minus_random_points"] == 5.0
    assert v["beats_random"] == [] and v["beats_base"] == []  # +5 points on 40 episodes is within the noise
    better = probe.verdict({"0": {"base": 0.4}, "0.01": {"critic": 0.7, "random": 0.3}}, 100)
    assert better["beats_random"] == ["0.01"] and better["beats_base"] == ["0.01"]
    only_random = probe.verdict({"0": {"base": 0.6}, "0.01": {"critic": 0.6, "random": 0.2}}, 100)
    assert only_random["beats_random"] == ["0.01"] and only_random["beats_base"] == []
    wrong_way = probe.verdict({"0": {"base": 0.4}, "0.01": {"critic": 0.05, "random": 0.4}}, 100)
    assert wrong_way["worse_than_random"] == ["0.01"] and v["worse_than_random"] == []


def test_markdown_is_computed_from_the_json(probe: ModuleType, tmp_path: Path) -> None:
    report = _report()
    md = probe.markdown(report)
    assert report["command"] in md.split("```")[1]
    assert "| 0 (the base alone) | 42% | 42% | – | – |" in md
    assert "| 0.02 | 20% | 22% | -2.5 ± 9.1 | -22.5 ± 10.1 |" in md
    assert "| 0.05 | 8% | 2% | +5.0 ± 4.8 | -35.0 ± 8.9 |" in md
    assert "mean cosine 0.28" in md and "3,000 held-out rollout states" in md
    assert "no step along the critics' gradient beats the base alone, nor a random step" in md
    assert "the critics point the wrong way" not in md  # -2.5 ± 9.1 at 0.02 is within the noise
    assert "38% success" in md and "std 0.01" in md
    (tmp_path / "in.json").write_text(json.dumps(report))
    assert probe.main(["--from-json", str(tmp_path / "in.json"), "--out-dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "residual_probe.md").read_text() == md
    argv = ["--from-json", str(tmp_path / "in.json"), "--out-dir", str(tmp_path / "out"), "--name", "variant"]
    assert probe.main(argv) == 0 and (tmp_path / "out" / "variant.md").read_text() == md


def test_the_chunk_pick_is_reported_against_the_base(probe: ModuleType) -> None:
    report = _report()
    assert "Picking among the base's own chunks" not in probe.markdown(report)  # --candidates 1: no such section
    report["results"]["picked_chunks"] = {"candidates": 8, "best": 0.6, "worst": 0.2}
    md = probe.markdown(report)
    assert "| its own sample (the base alone) | 42% | – |" in md
    assert "| the best of 8 by Q | 60% | +17.5 ± 11.0 |" in md
    assert "| the worst of 8 by Q | 20% | -22.5 ± 10.1 |" in md
    assert "Best minus worst: +40.0 ± 10.0 points: the critics do rank" in md
    report["results"]["picked_chunks"] = {"candidates": 8, "best": 0.45, "worst": 0.4}
    assert "do not rank even the base's own alternatives" in probe.markdown(report)


@pytest.mark.parametrize("stem", ["residual_probe", "residual_probe_n10"])
def test_committed_probe_markdown_is_rendered_from_its_json(probe: ModuleType, tmp_path: Path, stem: str) -> None:
    data = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
    argv = ["--from-json", str(data / f"{stem}.json"), "--out-dir", str(tmp_path), "--name", stem]
    assert probe.main(argv) == 0
    assert (tmp_path / f"{stem}.md").read_text() == (data / f"{stem}.md").read_text()
