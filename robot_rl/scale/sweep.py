"""Run a sweep's trials on Ray Tune, keep `sweep.json` current, write the results table.

Tune does the distribution: `tune.Tuner` over the plan's trial names (a grid), one CPU per trial
(`tune.with_resources`), restarts of failed trials (`FailureConfig(max_failures=...)`, each restart resuming from the
run's own checkpoint) and, for a search, ASHA early stopping on the periodic evaluation return. What Tune keeps under
`<sweep>/tune/` is its own bookkeeping (it pickles parts of it); this project never reads it back: a sweep resumes
from `sweep.json` and the run folders alone.

Layout of a sweep folder:

    sweep.json      the plan (configurations, trials) and the status of every trial and session
    trials/<name>/  one ordinary run folder per trial (config.json, checkpoints/, metrics.jsonl, eval.csv, summary.json)
    attempts/       one attempt log per trial (and any run folder that died before its first checkpoint)
    results.json    per configuration: IQM of the final eval return over seeds, bootstrap 95% CI, wall-clock
    results.md      the same as a table
    tune/           Ray Tune's experiment folders (one per session)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_rl.core.fileio import atomic_write_text
from robot_rl.scale.ray_env import require_tune
from robot_rl.scale.sweep_config import SweepPlan
from robot_rl.scale.sweep_results import write_results
from robot_rl.scale.sweep_trial import FINISHED_KEY, count_retries, read_attempts, run_trial

SWEEP_FILE = "sweep.json"
FORMAT_VERSION = 1
DONE = ("finished", "stopped")
"""Trial statuses a resumed sweep skips (a trial ASHA stopped was judged; training it on would undo the search)."""


@dataclass(frozen=True)
class SweepOutcome:
    """What a `run_sweep` call ended with."""

    status: str
    """`finished` (every trial finished or was stopped early), `failed` (a trial gave up after its retries) or
    `interrupted` (trials left to run: `--resume` continues them)."""
    statuses: dict[str, str]
    """Trial name → finished | stopped | failed | interrupted | pending."""
    results: dict[str, Any]
    """What results.json holds."""


def read_sweep(sweep_dir: Path) -> dict[str, Any]:
    """The sweep record (`sweep.json`)."""
    path = sweep_dir / SWEEP_FILE
    if not path.exists():
        raise FileNotFoundError(f"{sweep_dir} holds no sweep (no {SWEEP_FILE})")
    record: dict[str, Any] = json.loads(path.read_text())
    if record.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported sweep format {record.get('format')!r}")
    return record


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class _Record:
    """sweep.json, rewritten atomically whenever a trial changes state (an interrupted sweep leaves it current)."""

    def __init__(self, sweep_dir: Path, plan: SweepPlan, old: dict[str, Any] | None) -> None:
        self.sweep_dir, self.plan = sweep_dir, plan
        self.data: dict[str, Any] = old or {
            "format": FORMAT_VERSION,
            "plan": plan.to_json(),
            "created": _now(),
            "sessions": [],
            "trials": {t.name: {"config": t.config, "seed": t.seed, "status": "pending"} for t in plan.trials},
        }

    def status(self, name: str) -> str:
        return str(self.data["trials"][name]["status"])

    def statuses(self) -> dict[str, str]:
        return {name: self.status(name) for name in self.data["trials"]}

    def set_trial(self, name: str, status: str) -> dict[str, Any]:
        """Record `status` with what the run folder and attempt log say; returns the trial's entry."""
        entry: dict[str, Any] = self.data["trials"][name]
        attempts = read_attempts(self.sweep_dir / "attempts" / f"{name}.json")
        entry.update(status=status, attempts=len(attempts), retries=count_retries(attempts))
        errors = [a["error"] for a in attempts if a.get("error")]
        if errors:
            entry["last_error"] = errors[-1]
        summary = self.sweep_dir / "trials" / name / "summary.json"
        if summary.exists():
            s = json.loads(summary.read_text())
            entry.update(steps=s["steps"], final_eval_return=s["final_eval_mean_return"])
            entry["train_wall_s"] = s["train_wall_s"]
        return entry

    def write(self, status: str) -> None:
        self.data["status"] = status
        self.data["updated"] = _now()
        atomic_write_text(self.sweep_dir / SWEEP_FILE, json.dumps(self.data, indent=1))


def _classify(sweep_dir: Path, name: str, stopped: set[str], errored: set[str]) -> str:
    if (sweep_dir / "trials" / name / "summary.json").exists():
        return "finished"
    if name in stopped:
        return "stopped"
    if name in errored:
        return "failed"
    return "interrupted" if (sweep_dir / "attempts" / f"{name}.json").exists() else "pending"


def _asha(plan: SweepPlan) -> Any:
    """Tune's AsyncHyperBandScheduler that also remembers which trials it stopped before they finished."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

    class RecordingASHA(AsyncHyperBandScheduler):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.stopped_early: set[str] = set()

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
            decision: str = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.STOP and not result.get(FINISHED_KEY):
                self.stopped_early.add(trial.config["name"])
            return decision

    s = plan.scheduler
    return RecordingASHA(
        time_attr=s.time_attr,
        metric=s.metric,
        mode=s.mode,
        max_t=s.max_t,
        grace_period=s.grace_period,
        reduction_factor=s.reduction_factor,
    )


@contextmanager
def _quiet_tune() -> Iterator[None]:
    """While Tune runs: no console tables of its own (the sweep prints one line per trial), no JSON/CSV/TensorBoard
    logger callbacks (they would duplicate the run folders' metrics and pickle each trial's params), and no warning
    that those missing files hold no metrics."""
    env = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    old_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    analysis_log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    old_level = analysis_log.level
    analysis_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        analysis_log.setLevel(old_level)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _progress_callback(on_event: Callable[[str, str, Any], None]) -> Any:
    """A Tune callback forwarding trial ends and restarts to `on_event(name, event, trial)`."""
    tune = require_tune()

    class Progress(tune.Callback):  # type: ignore[misc,name-defined]
        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            on_event(trial.config["name"], "complete", trial)

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            on_event(trial.config["name"], "error", trial)

        def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            on_event(trial.config["name"], "recover", trial)

    return Progress()


def run_sweep(
    plan: SweepPlan,
    sweep_dir: Path,
    *,
    resume: bool = False,
    max_failures: int = 2,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> SweepOutcome:
    """Run the plan's trials (Ray must be initialized: `robot_rl.scale.ray_env.init_ray`).

    With `resume`, `sweep_dir/sweep.json` must hold this very plan: finished and early-stopped trials are skipped,
    the others resume from their run's latest checkpoint (or start, if they never reached one).

    Raises:
        FileExistsError: `sweep_dir` already holds a sweep and `resume` is False.
        FileNotFoundError / ValueError: `resume` without a sweep, or with a different plan.
    """
    tune = require_tune()
    echo = echo or _print_line
    sweep_dir = sweep_dir.resolve()  # trials run in other processes, maybe on other nodes
    old: dict[str, Any] | None = None
    if resume:
        old = read_sweep(sweep_dir)
        if old["plan"] != plan.to_json():
            raise ValueError(f"{sweep_dir / SWEEP_FILE} holds a different plan; resume with the command that made it")
    elif (sweep_dir / SWEEP_FILE).exists():
        raise FileExistsError(f"{sweep_dir} already holds a sweep; pass --resume to continue it, or another --out")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    record = _Record(sweep_dir, plan, old)
    for t in plan.trials:  # a summary.json is the truth, whatever an interrupted record said
        if (sweep_dir / "trials" / t.name / "summary.json").exists():
            record.set_trial(t.name, "finished")
    to_run = [t for t in plan.trials if record.status(t.name) not in DONE]
    session = {"started": _now(), "trials": [t.name for t in to_run], "max_failures": max_failures}
    record.data["sessions"].append(session)
    record.write("running")
    if progress:
        skipped = len(plan.trials) - len(to_run)
        echo(f"sweep {sweep_dir}: {len(to_run)} trial(s) to run" + (f", {skipped} done before" if skipped else ""))

    scheduler = _asha(plan) if plan.scheduler.kind == "asha" else None
    errored: set[str] = set()
    done_count = [len(plan.trials) - len(to_run)]

    def on_event(name: str, event: str, trial: Any) -> None:
        last = dict(getattr(trial, "last_result", {}) or {})
        if event == "recover":
            attempts = read_attempts(sweep_dir / "attempts" / f"{name}.json")
            error = attempts[-1].get("error", "?") if attempts else "?"
            if progress:
                echo(f"  {name} failed (attempt {len(attempts)}: {error}); retrying from its last checkpoint")
            return
        if event == "error":
            errored.add(name)
        status = _classify(sweep_dir, name, scheduler.stopped_early if scheduler else set(), errored)
        entry = record.set_trial(name, status)
        record.write("running")
        done_count[0] += 1
        if not progress:
            return
        where = f"[{done_count[0]}/{len(plan.trials)}] {name}"
        if status == "finished":
            echo(
                f"{where} finished: final eval return {entry['final_eval_return']:.1f} ({entry['steps']} steps, "
                f"{entry['train_wall_s']:.0f} s training, {entry['retries']} retries)"
            )
        elif status == "stopped":
            ret = last.get("eval_return")
            shown = f"{ret:.1f}" if isinstance(ret, (int, float)) else "?"
            echo(f"{where} stopped early by ASHA at step {last.get('step', '?')} (eval return {shown})")
        elif status == "failed":
            echo(f"{where} failed after {entry['attempts']} attempt(s): {entry.get('last_error', '?')}")
        else:
            echo(f"{where} interrupted")

    t0 = time.perf_counter()
    final = "interrupted"
    try:
        if to_run:
            payloads = {t.name: _payload(plan, t.name, sweep_dir) for t in to_run}
            trainable = tune.with_resources(
                tune.with_parameters(run_trial, payloads=payloads), {"cpu": plan.cpus_per_trial}
            )
            tuner = tune.Tuner(
                trainable,
                param_space={"name": tune.grid_search([t.name for t in to_run])},
                tune_config=tune.TuneConfig(
                    num_samples=1,
                    scheduler=scheduler,
                    trial_name_creator=_trial_name,
                    trial_dirname_creator=_trial_name,
                ),
                run_config=tune.RunConfig(
                    name=f"session-{len(record.data['sessions'])}",
                    storage_path=str(sweep_dir / "tune"),
                    failure_config=tune.FailureConfig(max_failures=max_failures),
                    callbacks=[_progress_callback(on_event)],
                    verbose=0,
                ),
            )
            with _quiet_tune():
                grid = tuner.fit()
            errored |= {r.config["name"] for r in grid if r.error is not None and r.config}
    finally:
        stopped = scheduler.stopped_early if scheduler else set()
        for t in to_run:
            record.set_trial(t.name, _classify(sweep_dir, t.name, stopped, errored))
        statuses = record.statuses()
        if any(s == "failed" for s in statuses.values()):
            final = "failed"
        elif all(s in DONE for s in statuses.values()):
            final = "finished"
        session.update(ended=_now(), wall_s=round(time.perf_counter() - t0, 1))
        record.write(final)
        results = write_results(plan, sweep_dir, statuses)
    return SweepOutcome(status=final, statuses=statuses, results=results)


def _print_line(line: str) -> None:
    # Not `print` itself as a default: Tune pickles its callbacks, and a patched builtins.print (pytest, Ray's own
    # output capture) makes the original unpicklable by name.
    print(line, flush=True)


def _trial_name(trial: Any) -> str:
    return str(trial.config["name"])


def _payload(plan: SweepPlan, name: str, sweep_dir: Path) -> dict[str, Any]:
    """What a worker needs to run trial `name`: its configs as JSON and where it writes."""
    from robot_rl.core.config import config_to_json

    trial = next(t for t in plan.trials if t.name == name)
    train, algo_json = plan.trial_configs(trial, sweep_dir / "trials")
    return {
        "algo": plan.algo,
        "algo_module": plan.algo_module,
        "train": config_to_json(train),
        "algo_config": algo_json,
        "run_dir": str(sweep_dir / "trials" / name),
        "attempts_file": str(sweep_dir / "attempts" / f"{name}.json"),
    }
