"""A finished flow run as MeanFlow's teacher: its velocity field replaces the noisy per-sample `ε − x₀`.

Flow-map distillation (the teacher's ODE has one deterministic map from noise to action chunk; the student learns
its average velocity over any interval, so one step follows the teacher's whole trajectory). The objective is
MeanFlow's own (`robot_rl.algos.meanflow.losses.meanflow_loss`) with the teacher's velocity as the JVP tangent and
the target; cf. Sabour et al. 2025 ("Align Your Flow", flow-map distillation) and Boffi et al. 2025 (flow maps).

The teacher is loaded on the first update, not when the learner is built: rebuilding a finished student (export,
evaluation) must not need the teacher's run any more.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from robot_rl.algos.meanflow.losses import T_MIN
from robot_rl.nets.generative.samplers import velocity_of


class TeacherError(ValueError):
    """The teacher run cannot teach this learner (not a flow run, other sizes, other normalization)."""


class FlowTeacher:
    """A flow run's EMA denoiser, frozen, as a velocity field in the student's normalized units."""

    def __init__(self, learner: Any, prediction: str, identity: str, source: str) -> None:
        """A trained `flow` learner (its EMA denoiser and normalizers are used); `prediction` its config's;
        `identity` what resumed students check; `source` names it in errors. `from_run` is the usual way."""
        self.learner = learner
        self.prediction = prediction
        self.identity = identity
        """sha256 of the teacher checkpoint's weights (recorded in the student's checkpoints, checked on resume)."""
        self.source = source
        self.denoiser: torch.nn.Module = learner.ema.module
        self.denoiser.eval()
        for p in self.denoiser.parameters():
            p.requires_grad_(False)

    @classmethod
    def from_run(cls, run_dir: str | Path) -> FlowTeacher:
        """The latest checkpoint of a finished `flow` run. Raises TeacherError with the reason."""
        from robot_rl.residual.base import run_identity
        from robot_rl.train.from_run import load_run_algorithm

        run = Path(run_dir)
        try:
            algo, config, checkpoint = load_run_algorithm(run)
        except (FileNotFoundError, ValueError) as exc:
            raise TeacherError(f"MeanFlow teacher {run}: {exc}") from exc
        if config["algo"] != "flow":
            raise TeacherError(f"MeanFlow teacher {run} is a {config['algo']!r} run; a teacher is a 'flow' run")
        prediction = str(config["algo_config"].get("prediction", "velocity"))
        return cls(algo, prediction, run_identity(checkpoint), str(run))

    def check_matches(self, chunk_size: int, obs_history: int, normalizers: Mapping[str, torch.nn.Module]) -> None:
        """Raise TeacherError unless the teacher's H, T_o and normalizers equal the student's (the same dataset
        and normalization: the teacher's velocity is then in the student's units)."""
        t = self.learner
        if (t.chunk_size, t.obs_history) != (chunk_size, obs_history):
            raise TeacherError(
                f"MeanFlow teacher {self.source} has H={t.chunk_size}, T_o={t.obs_history}; "
                f"the student has H={chunk_size}, T_o={obs_history}"
            )
        for name, student in normalizers.items():
            teacher: torch.nn.Module = getattr(t, name)
            mine, theirs = student.state_dict(), teacher.state_dict()
            same = mine.keys() == theirs.keys() and all(
                mine[k].shape == theirs[k].shape and torch.allclose(mine[k], theirs[k], rtol=1e-4, atol=1e-6)
                for k in mine
            )
            if not same:
                raise TeacherError(
                    f"MeanFlow teacher {self.source}: its {name} differs from the student's; train the student on "
                    "the teacher's dataset with the same normalization settings"
                )

    @torch.no_grad()
    def velocity(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """`dz/dt` of the teacher's flow at `z [B, H, A]`, `t [B]` (t = 1 noise), given `cond [B, C]`."""
        out = self.denoiser(z, t, cond)
        return velocity_of(out, z, t.clamp_min(T_MIN).view(-1, 1, 1), self.prediction)
