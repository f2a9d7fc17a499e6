"""A test-only algorithm for sweep fault tolerance: SAC that raises once, at a chosen update.

Registered through the plug-in seam (`robot-rl --plugin tests.scale.flaky_plugin sweep flaky_sac ...`), so the Ray
workers import it from the run's recorded `algo_module` like any third-party algorithm. The marker file makes the
failure happen once per marker: the first attempt creates it and raises, a retry finds it and trains on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from robot_rl.algos.registry import register_algorithm
from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats


class InjectedFailure(RuntimeError):
    """The failure this plug-in raises on purpose."""


@dataclass(frozen=True)
class FlakySACConfig(SACConfig):
    """SAC that fails once at a chosen update (a sweep fault-tolerance test)."""

    fail_at_update: int = 0
    """Raise InjectedFailure at this update call (0 = never)."""
    fail_marker: str = ""
    """File created when the failure is raised; while it exists the algorithm never fails again."""


class FlakySAC(SAC):
    """SAC whose `update` raises once (see FlakySACConfig)."""

    def __init__(self, spec: PolicySpec, cfg: FlakySACConfig) -> None:
        super().__init__(spec, cfg)
        self.flaky = cfg
        self.calls = 0  # since this attempt started: a resumed attempt counts afresh

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        self.calls += 1
        cfg = self.flaky
        if cfg.fail_at_update and self.calls == cfg.fail_at_update and cfg.fail_marker:
            marker = Path(cfg.fail_marker)
            if not marker.exists():
                marker.write_text("failed once\n")
                raise InjectedFailure(f"injected failure at update {self.calls}")
        return super().update(batches)


register_algorithm("flaky_sac", FlakySACConfig, FlakySAC)
