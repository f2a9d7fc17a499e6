"""Generative runs end to end through the CLI: train offline → `robot-rl export --sampler-steps` (one verified
bundle per K, sampler inside) → `robot-rl eval` runs each bundle in sim through `OnnxPolicy` (receding horizon,
history kept, seeded noise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robot_rl.cli import main
from robot_rl.export.runtime import OnnxPolicy
from tests.algos.generative.test_generative_train_cli import _args, pendulum_dataset  # noqa: F401 (fixture)

STEPS = {"diffusion": (2, 5), "flow": (1, 4), "meanflow": (1, 2)}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_train_export_per_k_then_eval_the_bundles(
    name: str,
    pendulum_dataset: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = tmp_path / "runs"
    assert main(_args(name, pendulum_dataset, runs, 20)) == 0
    out = tmp_path / "bundles"
    ks = STEPS[name]
    export_args = ["export", str(runs / name), "--out", str(out), "--parity-samples", "10000", "--sampler-steps"]
    assert main([*export_args, *map(str, ks)]) == 0
    plans = []
    for k in ks:
        manifest = json.loads((out / f"k{k}" / "manifest.json").read_text())
        assert manifest["sampler"]["steps"] == k and manifest["parity"]["n_samples"] >= 10_000
        policy = OnnxPolicy.load(out / f"k{k}")
        assert (policy.chunk_size, policy.obs_history) == (4, 2)
        history = np.tile(np.array([1.0, 0.0, 0.0], np.float32), 2)
        noise = np.random.default_rng(0).standard_normal((4, 1)).astype(np.float32)
        plan = policy.plan(history, noise)
        assert plan.shape == (4, 1) and np.all(np.abs(plan) <= 2.0)  # Pendulum's physical torque range
        plans.append(plan)
        capsys.readouterr()
        assert main(["eval", "--policy", str(out / f"k{k}"), "--episodes", "1"]) == 0
        assert "return" in capsys.readouterr().out
    assert not np.allclose(plans[0], plans[1])  # a different K is a different sampler on the same weights
