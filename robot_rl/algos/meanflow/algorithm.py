"""MeanFlow update: draw (r ≤ t, ε), one step on the JVP-target loss; the policy samples in 1 (or K) steps."""

from __future__ import annotations

from typing import Any

import torch

from robot_rl.algos.chunked.learner import ChunkedLearner
from robot_rl.algos.flow.times import sample_times
from robot_rl.algos.meanflow import losses
from robot_rl.algos.meanflow.config import MeanFlowConfig
from robot_rl.algos.meanflow.teacher import FlowTeacher, TeacherError
from robot_rl.core.specs import PolicySpec
from robot_rl.nets.generative.samplers import ChunkSampler


class MeanFlow(ChunkedLearner):
    """MeanFlow on action chunks: the denoiser embeds (t, t − r) and predicts the average velocity over [r, t]."""

    name = "meanflow"

    def __init__(self, spec: PolicySpec, cfg: MeanFlowConfig) -> None:
        sampler = ChunkSampler("meanflow", cfg.sampler_steps, prediction=cfg.prediction)
        super().__init__(spec, cfg, sampler, time_scale=cfg.time_scale, two_times=True)
        self.mcfg = cfg
        self._teacher: FlowTeacher | None = None
        self._resumed_teacher: str | None = None
        """The teacher identity a resumed checkpoint recorded (the teacher loaded later must be that one)."""

    def sample_interval(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`(t, r)`, each `[n]`: two draws sorted so r ≤ t, then r = t on an `equal_fraction` of the rows."""
        c = self.mcfg
        a = sample_times(n, c.time_sampling, c.logit_mean, c.logit_std)
        b = sample_times(n, c.time_sampling, c.logit_mean, c.logit_std)
        t, r = torch.maximum(a, b), torch.minimum(a, b)
        equal = torch.rand(n) < c.equal_fraction
        return t, torch.where(equal, t, r)

    def teacher(self) -> FlowTeacher | None:
        """The distillation teacher (`cfg.teacher`), loaded and checked against this learner on first use."""
        if self._teacher is None and self.mcfg.teacher:
            self.use_teacher(FlowTeacher.from_run(self.mcfg.teacher))
        return self._teacher

    def use_teacher(self, teacher: FlowTeacher) -> None:
        """Distill from `teacher` (checked against this learner; raises TeacherError). `cfg.teacher` loads one
        from a run directory on the first update; this sets one directly (an in-memory flow learner)."""
        normalizers = {"obs_normalizer": self.obs_normalizer, "action_normalizer": self.action_normalizer}
        teacher.check_matches(self.chunk_size, self.obs_history, normalizers)
        if self._resumed_teacher is not None and self._resumed_teacher != teacher.identity:
            raise TeacherError(
                f"MeanFlow teacher {teacher.source} is not the one this run was trained with "
                f"({teacher.identity} != {self._resumed_teacher})"
            )
        self._teacher = teacher

    def loss(self, x0: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t, r = self.sample_interval(x0.shape[0])
        c = self.mcfg
        teacher = self.teacher()
        loss, mse = losses.meanflow_loss(
            self.denoiser,
            x0,
            cond,
            torch.randn_like(x0),
            t,
            r,
            c.adaptive_power,
            c.adaptive_eps,
            c.tangent,
            teacher.velocity if teacher is not None else None,
            c.prediction,
        )
        return loss, {"loss/meanflow_mse": mse}

    def state_meta(self) -> dict[str, Any]:
        meta = super().state_meta()
        teacher = self._teacher.identity if self._teacher is not None else self._resumed_teacher
        if teacher is not None:
            meta["teacher"] = teacher
        return meta

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        super().load_state_tensors(tensors, meta)
        self._resumed_teacher = meta.get("teacher")
