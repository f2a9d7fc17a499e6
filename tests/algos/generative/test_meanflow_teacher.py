"""MeanFlow distilled from a trained flow (`MeanFlowConfig.teacher`): the loss, the teacher's checks, a run
through the CLI with resume, and the 1-step student covering both modes of the bimodal toy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.algos.meanflow.losses import meanflow_loss
from robot_rl.algos.meanflow.teacher import FlowTeacher, TeacherError
from robot_rl.algos.registry import make_algorithm
from robot_rl.cli import main
from robot_rl.nets.generative.denoisers import make_denoiser
from robot_rl.nets.generative.samplers import velocity_of
from robot_rl.train import checkpoint as ckpt
from tests.algos.generative.test_generative_learning import (
    CONFIGS,
    SPEC,
    T_O,
    H,
    _fit,
    bimodal_batches,
    mode_centers,
)
from tests.algos.generative.test_generative_train_cli import _args, pendulum_dataset  # noqa: F401 (fixture)


def test_a_teacher_that_returns_the_path_velocity_gives_the_conditional_loss() -> None:
    torch.manual_seed(0)
    den = make_denoiser("mlp", 2, 4, 3, 32, 2, (), 32, 16, 1.0, True)
    x0, noise, cond = torch.randn(8, 4, 2), torch.randn(8, 4, 2), torch.randn(8, 3)
    a, b = torch.rand(8), torch.rand(8)
    t, r = torch.maximum(a, b), torch.minimum(a, b)
    expected, _ = meanflow_loss(den, x0, cond, noise, t, r, 0.0, 1e-3, "conditional")
    got, _ = meanflow_loss(den, x0, cond, noise, t, r, 0.0, 1e-3, "model", lambda z, tt, c: noise - x0)
    torch.testing.assert_close(got, expected)
    other, _ = meanflow_loss(den, x0, cond, noise, t, r, 0.0, 1e-3, "model", lambda z, tt, c: torch.zeros_like(z))
    assert not torch.isclose(other, expected)  # the teacher's velocity is what the target is built from


def test_a_sample_predicting_teacher_speaks_velocity() -> None:
    z, x_hat = torch.full((1, 2, 1), 0.5), torch.full((1, 2, 1), 3.0)  # x̂ outside [-1, 1] is clipped to 1
    torch.testing.assert_close(velocity_of(x_hat, z, 0.25, "sample"), torch.full((1, 2, 1), (0.5 - 1.0) / 0.25))
    torch.testing.assert_close(velocity_of(x_hat, z, 0.25, "velocity"), x_hat)


def _flow_teacher(seed: int = 0) -> FlowTeacher:
    flow = _fit("flow", CONFIGS["flow"], seed)
    return FlowTeacher(flow, "velocity", "in-memory:flow", "the toy flow")


@pytest.mark.slow
def test_the_one_step_student_of_a_flow_covers_both_modes() -> None:
    teacher = _flow_teacher()
    # The bimodal test's 1-step MeanFlow with the velocity output (the benchmark's distilled variant), the default
    # share of empty intervals (25%), half its updates.
    cfg = dataclasses.replace(CONFIGS["meanflow_velocity"], equal_fraction=0.25)
    torch.manual_seed(0)
    algo = make_algorithm("meanflow", SPEC, cfg)
    algo.observe(np.linspace(-1, 1, 101, dtype=np.float32)[:, None])
    algo.observe_actions(np.array([[-0.8], [0.8]], np.float32))  # type: ignore[attr-defined]
    algo.use_teacher(teacher)  # type: ignore[attr-defined]
    batches = bimodal_batches(1)
    for _ in range(1000):
        algo.update(batches)
    policy = algo.policy()  # type: ignore[attr-defined]
    gen = torch.Generator().manual_seed(5)
    for x in (-0.8, 0.0, 0.8):
        with torch.no_grad():
            chunks = policy(torch.full((400, T_O), x), torch.randn(400, H, 1, generator=gen)).numpy()[..., 0] / 2.0
        lo, hi = mode_centers(x)
        near_lo, near_hi = np.abs(chunks - lo) < 0.15, np.abs(chunks - hi) < 0.15
        assert 0.25 < near_lo.mean() < 0.75 and 0.25 < near_hi.mean() < 0.75, (x, near_lo.mean(), near_hi.mean())
        assert (near_lo | near_hi).mean() > 0.85, (x, (near_lo | near_hi).mean())
        assert (np.abs(chunks - 0.3 * x) < 0.25).mean() < 0.05, x


def test_a_teacher_with_other_sizes_or_normalization_is_refused() -> None:
    flow = make_algorithm("flow", SPEC, CONFIGS["flow"])
    flow.observe(np.linspace(-1, 1, 101, dtype=np.float32)[:, None])
    teacher = FlowTeacher(flow, "velocity", "in-memory", "the toy flow")
    other_h = make_algorithm("meanflow", SPEC, dataclasses.replace(CONFIGS["meanflow"], chunk_size=H + 1))
    with pytest.raises(TeacherError, match="H=4, T_o=2; the student has H=5"):
        other_h.use_teacher(teacher)  # type: ignore[attr-defined]
    student = make_algorithm("meanflow", SPEC, CONFIGS["meanflow"])
    student.observe(np.linspace(-3, 3, 101, dtype=np.float32)[:, None])  # another dataset's observations
    with pytest.raises(TeacherError, match="obs_normalizer differs"):
        student.use_teacher(teacher)  # type: ignore[attr-defined]


def test_distilling_through_the_cli_records_the_teacher_and_resume_checks_it(
    pendulum_dataset: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = tmp_path / "runs"
    assert main([*_args("flow", pendulum_dataset, runs, 20)]) == 0
    teacher_dir = runs / "flow"
    student = [*_args("meanflow", pendulum_dataset, runs, 20), "--teacher", str(teacher_dir)]
    assert main(student) == 0
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(runs / "meanflow" / "checkpoints"))  # type: ignore[arg-type]
    recorded = saved.state["algo_meta"]["teacher"]
    assert recorded == FlowTeacher.from_run(teacher_dir).identity and recorded.startswith("run:sha256:")
    assert json.loads((runs / "meanflow" / "config.json").read_text())["algo_config"]["teacher"] == str(teacher_dir)

    # the teacher's weights change under the student: resuming refuses to mix two teachers
    assert main([*_args("flow", pendulum_dataset, runs, 30), "--resume"]) == 0
    resumed = [*_args("meanflow", pendulum_dataset, runs, 30), "--teacher", str(teacher_dir), "--resume"]
    assert main(resumed) != 0
    assert "is not the one this run was trained with" in capsys.readouterr().err

    # a run of another learner is no teacher; the error says what is expected
    assert main([*_args("diffusion", pendulum_dataset, runs, 10)]) == 0
    wrong = [*_args("meanflow", pendulum_dataset, runs, 10), "--run-name", "m2", "--teacher", str(runs / "diffusion")]
    assert main(wrong) != 0
    assert "is a 'diffusion' run; a teacher is a 'flow' run" in capsys.readouterr().err


def test_the_student_exports_without_its_teacher(pendulum_dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    runs = tmp_path / "runs"
    assert main([*_args("flow", pendulum_dataset, runs, 20)]) == 0
    assert main([*_args("meanflow", pendulum_dataset, runs, 20), "--teacher", str(runs / "flow")]) == 0
    import shutil

    shutil.rmtree(runs / "flow")  # the teacher is needed to train, not to rebuild or export the student
    out = tmp_path / "bundle"
    assert main(["export", str(runs / "meanflow"), "--out", str(out), "--parity-samples", "200"]) == 0
    assert (out / "manifest.json").is_file()
