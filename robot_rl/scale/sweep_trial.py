"""One sweep trial inside a Ray worker: an ordinary training run, its evaluations reported to Tune, its attempts
logged.

The trial *is* `robot_rl.train.loop.train` on its own run folder, so everything that works on a run (export, eval,
`robot-rl train --resume`) works on a trial. A restart after a failure resumes from the run's latest checkpoint
(the driver's `resume=True`); Tune's own checkpoints are not used, the run folder is the single source of truth.
Each attempt is appended to `<sweep>/attempts/<trial>.json` (start, the step it resumed from, outcome, error), which
is how the sweep counts retries.
"""

from __future__ import annotations

import json
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from robot_rl.core.fileio import atomic_write_text

FINISHED_KEY = "finished"
"""Set in a trial's last Tune report, after its summary.json is written (a scheduler stop then costs nothing)."""


def read_attempts(path: Path) -> list[dict[str, Any]]:
    """A trial's attempt log ([] when it never started)."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return list(data["attempts"])


def count_retries(attempts: list[dict[str, Any]]) -> int:
    """Attempts that restarted a trial after a failed one (a resume after an interrupted sweep is no retry)."""
    return sum(1 for prev in attempts[:-1] if prev.get("outcome") == "failed")


def _write_attempts(path: Path, attempts: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"attempts": attempts}, indent=1))


def _checkpoint_step(run_dir: Path) -> int | None:
    """Step of the run's latest checkpoint, None when it cannot be resumed (no config.json or no checkpoint)."""
    from robot_rl.train.checkpoint import latest_checkpoint

    latest = latest_checkpoint(run_dir / "checkpoints")
    if latest is None or not (run_dir / "config.json").exists():
        return None
    return int(json.loads((latest / "state.json").read_text())["step"])


def _final_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": int(summary["steps"]),
        "eval_return": float(summary["final_eval_mean_return"]),
        "success_rate": float(summary["final_eval_success_rate"]),
        "train_wall_s": float(summary["train_wall_s"]),
        FINISHED_KEY: True,
    }


def run_trial(config: dict[str, Any], payloads: dict[str, dict[str, Any]]) -> None:
    """Tune function trainable: train trial `config["name"]` (its configs are `payloads[name]`) in its run folder."""
    from ray import tune

    from robot_rl.algos.registry import algo_config_from_json, get_algorithm
    from robot_rl.core.config import config_from_json
    from robot_rl.train.config import TrainConfig
    from robot_rl.train.evaluate import EvalResult
    from robot_rl.train.loop import train

    p = payloads[config["name"]]
    run_dir, log_path = Path(p["run_dir"]), Path(p["attempts_file"])
    summary_path = run_dir / "summary.json"
    if summary_path.exists():  # finished in an attempt whose last report was lost: nothing to train
        tune.report(_final_metrics(json.loads(summary_path.read_text())))
        return
    attempts = read_attempts(log_path)
    resume_step = _checkpoint_step(run_dir)
    if resume_step is None and run_dir.exists() and any(run_dir.iterdir()):
        # A run that died before its first checkpoint cannot resume: keep it for inspection, start afresh.
        aside = log_path.parent / f"{run_dir.name}-attempt{len(attempts)}"
        run_dir.rename(aside)
    attempts.append(
        {
            "attempt": len(attempts) + 1,
            "started": time.time(),
            "host": socket.gethostname(),
            "resumed_from_step": resume_step,
            "outcome": None,  # stays None when the worker is killed (scheduler stop, interrupted sweep)
        }
    )
    _write_attempts(log_path, attempts)

    get_algorithm(p["algo"], p["algo_module"])  # a plug-in registers in this worker before anything is built
    cfg = config_from_json(TrainConfig, p["train"])
    algo_cfg = algo_config_from_json(p["algo"], p["algo_config"], p["algo_module"])

    def on_eval(step: int, res: EvalResult) -> None:
        if step < cfg.total_steps:  # the final evaluation is reported below, once summary.json exists
            tune.report({"step": step, "eval_return": res.mean_return, "success_rate": res.success_rate})

    try:
        train(cfg, p["algo"], algo_cfg, resume=resume_step is not None, on_eval=on_eval)
    except BaseException as exc:
        attempts[-1].update(
            ended=time.time(), outcome="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
        )
        _write_attempts(log_path, attempts)
        raise
    attempts[-1].update(ended=time.time(), outcome="finished")
    _write_attempts(log_path, attempts)
    tune.report(_final_metrics(json.loads(summary_path.read_text())))
