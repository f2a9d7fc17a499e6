"""The update loop of offline training: no env steps; a step is one `Algorithm.update` call on dataset batches.

Checkpoints, evaluation (in the env), metrics and the progress bar work as in the online loop; the dataset is not
stored in checkpoints (it is re-read from `--dataset`, and its fingerprint is checked on resume).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch

from robot_rl.core.types import Batch
from robot_rl.train import checkpoint as ckpt
from robot_rl.train.evaluate import EvalResult
from robot_rl.train.session import TrainSession, next_multiple


def run_offline(s: TrainSession, batches: Iterator[Batch[torch.Tensor]], saved: ckpt.Checkpoint | None) -> EvalResult:
    """Train until `s.cfg.total_steps` update calls; returns the final evaluation."""
    cfg = s.cfg
    if saved is not None:
        s.restore(saved)

    def save() -> None:
        s.save({}, {"data": "offline"})

    next_eval = next_multiple(s.step, cfg.eval_every)
    next_ckpt = next_multiple(s.step, cfg.checkpoint_every)
    next_log = next_multiple(s.step, cfg.log_every)
    last_eval: EvalResult | None = None
    while s.step < cfg.total_steps:
        t0 = time.perf_counter()
        s.record(s.algo.update(batches))
        s.train_wall_s += time.perf_counter() - t0
        s.step += 1
        s.bar.update(1)
        if cfg.checkpoint_every and s.step >= next_ckpt:  # no episodes here: save exactly on the multiple
            save()
            next_ckpt = next_multiple(s.step, cfg.checkpoint_every)
        if cfg.eval_every and s.step >= next_eval:
            last_eval = s.run_eval()
            next_eval = next_multiple(s.step, cfg.eval_every)
        if s.step >= next_log:
            s.flush_stats({"time/updates_per_s": s.step / max(s.train_wall_s, 1e-9)})
            next_log = next_multiple(s.step, cfg.log_every)
    last_eval = s.finish(last_eval)
    save()
    return last_eval
