"""What every training loop shares: counters, RNG streams, checkpoints, evaluation, metrics, the progress bar.

`robot_rl.train.loop.train` builds one `TrainSession` and hands it to the online loop (env data, optionally mixed
with a dataset) or the offline loop (dataset only); both save, evaluate and log through it, so the three data
modes write the same run directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from robot_rl.algos.base import Algorithm
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import TrainingStats
from robot_rl.train import checkpoint as ckpt
from robot_rl.train.config import TrainConfig
from robot_rl.train.device import device_rng_state, restore_device_rng
from robot_rl.train.evaluate import EvalResult, evaluate
from robot_rl.train.metrics import MetricsLogger
from robot_rl.train.policy_actor import PolicyActor


class TrainingDiverged(RuntimeError):
    """A loss, statistic or parameter became NaN/Inf; the run stopped without a valid checkpoint."""


def next_multiple(step: int, every: int) -> int:
    """The first multiple of `every` after `step` (never, for `every <= 0`)."""
    if every <= 0:
        return 1 << 62
    return (step // every + 1) * every


def check_finite(stats: TrainingStats, step: int, run_dir: Path) -> None:
    """Raise `TrainingDiverged` (after writing `failure.json`) when a statistic is NaN/Inf."""
    bad = stats.non_finite()
    if bad:
        dump = {"step": step, "non_finite": bad, "stats": {k: repr(v) for k, v in stats.values.items()}}
        ckpt.atomic_write_text(run_dir / "failure.json", json.dumps(dump, indent=1))
        raise TrainingDiverged(
            f"training diverged at step {step}: non-finite {bad}; no checkpoint was written for this state "
            f"(details in {run_dir / 'failure.json'}; the last valid checkpoint is untouched)"
        )


@dataclass
class TrainSession:
    """The mutable state of one run (the loops advance `step` and `train_wall_s`)."""

    cfg: TrainConfig
    algo: Algorithm
    spec: PolicySpec
    run_dir: Path
    config_json: dict[str, Any]
    """What config.json says (saved in every checkpoint too)."""
    logger: MetricsLogger
    bar: Any
    """tqdm progress bar over `cfg.total_steps`."""
    sample_rng: np.random.Generator
    """Batch index draws."""
    explore_rng: np.random.Generator
    """Warm-up actions (online data)."""
    step: int = 0
    train_wall_s: float = 0.0
    """Seconds spent collecting and updating (evaluation and checkpointing excluded)."""
    stats_acc: dict[str, float] = field(default_factory=dict)
    stats_n: int = 0
    env_view: Any = None
    """How the learner sees an env (`data_view` of a learner on a frozen base; None: as it is). Evaluation envs are
    wrapped with it too."""
    on_eval: Callable[[int, EvalResult], None] | None = None
    """Called with (step, result) after every evaluation is logged: the seam through which a caller (a sweep's
    trial reporting to its scheduler) follows a run without the loops knowing about it."""

    @classmethod
    def open(
        cls,
        cfg: TrainConfig,
        algo: Algorithm,
        spec: PolicySpec,
        run_dir: Path,
        config_json: dict[str, Any],
        env_view: Any = None,
        on_eval: Callable[[int, EvalResult], None] | None = None,
    ) -> TrainSession:
        """A session with fresh RNG streams seeded from `cfg.seed` (a resume then restores their states)."""
        return cls(
            cfg=cfg,
            algo=algo,
            spec=spec,
            run_dir=run_dir,
            config_json=config_json,
            logger=MetricsLogger(run_dir, cfg.tensorboard),
            bar=tqdm(total=cfg.total_steps, disable=not cfg.progress, unit="step", dynamic_ncols=True),
            sample_rng=np.random.default_rng([cfg.seed, 2]),
            explore_rng=np.random.default_rng([cfg.seed, 3]),
            env_view=env_view,
            on_eval=on_eval,
        )

    def restore(self, saved: ckpt.Checkpoint) -> None:
        """Algorithm, RNG streams and counters from `saved` (the loop restores its own data)."""
        st = saved.state
        self.algo.load_state_tensors(saved.model, st["algo_meta"])
        torch.set_rng_state(saved.data["rng/torch"])
        restore_device_rng(self.algo, saved.data)
        self.sample_rng.bit_generator.state = st["rng"]["sample"]
        self.explore_rng.bit_generator.state = st["rng"]["explore"]
        self.step = int(st["step"])
        self.train_wall_s = float(st["train_wall_s"])
        self.bar.update(self.step)

    def save(self, data: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        """Checkpoint at the current step: the algorithm, `data` tensors and `state` JSON plus the shared parts."""
        full_data = {**data, "rng/torch": torch.get_rng_state(), **device_rng_state(self.algo)}
        full_state = {
            **state,
            "train_wall_s": self.train_wall_s,
            "rng": {"sample": self.sample_rng.bit_generator.state, "explore": self.explore_rng.bit_generator.state},
            "algo_meta": self.algo.state_meta(),
            "config": self.config_json,
        }
        ckpt.save_checkpoint(self.run_dir / "checkpoints", self.step, self.algo.state_tensors(), full_data, full_state)

    def run_eval(self) -> EvalResult:
        """Evaluate the deployable policy (physical actions) in `cfg.env`; logged to eval.csv."""
        actor = PolicyActor(self.algo.policy())
        res = evaluate(
            actor.act,
            self.cfg.env,
            self.cfg.eval_episodes,
            self.cfg.seed,
            backend=self.cfg.backend,
            on_reset=actor.reset,
            view=None if self.env_view is None else self.env_view.wrap,
        )
        self.logger.log_eval(
            self.step, self.train_wall_s, res.mean_return, res.std_return, res.success_rate, len(res.returns)
        )
        self.bar.set_postfix(eval_return=f"{res.mean_return:.1f}")
        if self.on_eval is not None:
            self.on_eval(self.step, res)
        return res

    def record(self, stats: TrainingStats) -> None:
        """Check one update's statistics and add them to the running means of the next log line."""
        check_finite(stats, self.step, self.run_dir)
        for k, v in stats.values.items():
            self.stats_acc[k] = self.stats_acc.get(k, 0.0) + v
        self.stats_n += 1

    def flush_stats(self, extra: dict[str, float]) -> None:
        """Write the averaged statistics since the last call, plus `extra`, at the current step."""
        values = {k: v / max(self.stats_n, 1) for k, v in self.stats_acc.items()}
        values.update(extra)
        self.logger.log(self.step, self.train_wall_s, values)
        self.stats_acc, self.stats_n = {}, 0

    def finish(self, last_eval: EvalResult | None) -> EvalResult:
        """Final evaluation (unless one just ran at this step), final checkpoint is the loop's; summary.json."""
        if last_eval is None or not self.cfg.eval_every or self.step % self.cfg.eval_every != 0:
            last_eval = self.run_eval()
        return last_eval

    def write_summary(self, last_eval: EvalResult) -> None:
        summary = {
            "steps": self.step,
            "train_wall_s": self.train_wall_s,
            "steps_per_s": self.step / max(self.train_wall_s, 1e-9),
            "final_eval_mean_return": last_eval.mean_return,
            "final_eval_std_return": last_eval.std_return,
            "final_eval_success_rate": last_eval.success_rate,
        }
        ckpt.atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=1))

    def close(self) -> None:
        self.bar.close()
        self.logger.close()
