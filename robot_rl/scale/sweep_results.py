"""A sweep's results table: per configuration, the IQM over seeds of the final evaluation return with a bootstrap
95% interval, and the wall-clock its trials took (`results.json`, `results.md`).

Every number is read back from the trials' own run folders (summary.json, the attempt logs), so the table can be
rebuilt at any time and checked against the runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robot_rl.core.fileio import atomic_write_text
from robot_rl.core.stats import bootstrap_ci, iqm
from robot_rl.scale.sweep_config import SweepPlan
from robot_rl.scale.sweep_trial import read_attempts

STATISTIC = "IQM over seeds of summary.json's final_eval_mean_return; 95% percentile bootstrap (2000 resamples, seed 0)"


def _attempt_wall_s(attempts: list[dict[str, Any]]) -> float:
    """Seconds the trial's attempts ran (start to end; an attempt killed without an end counts nothing)."""
    return float(sum(a["ended"] - a["started"] for a in attempts if a.get("ended") is not None))


def aggregate(plan: SweepPlan, sweep_dir: Path, statuses: dict[str, str]) -> dict[str, Any]:
    """The results of every configuration (in plan order, each with its rank by IQM; 1 = best)."""
    rows: list[dict[str, Any]] = []
    for c in plan.configs:
        seeds: dict[str, list[int]] = {"finished": [], "stopped": [], "failed": [], "unfinished": []}
        finals: list[float] = []
        train_wall: list[float] = []
        trial_wall: list[float] = []
        for t in (t for t in plan.trials if t.config == c.id):
            summary_path = sweep_dir / "trials" / t.name / "summary.json"
            status = statuses.get(t.name, "pending")
            if summary_path.exists():
                summary = json.loads(summary_path.read_text())
                finals.append(float(summary["final_eval_mean_return"]))
                train_wall.append(float(summary["train_wall_s"]))
                trial_wall.append(_attempt_wall_s(read_attempts(sweep_dir / "attempts" / f"{t.name}.json")))
                seeds["finished"].append(t.seed)
            elif status in ("stopped", "failed"):
                seeds[status].append(t.seed)
            else:
                seeds["unfinished"].append(t.seed)
        row: dict[str, Any] = {
            "config": c.id,
            "overrides": c.overrides,
            "seeds": seeds,
            "final_eval_returns": finals,
            "iqm": iqm(finals) if finals else None,
            # sorted: the interval must not depend on the order the seeds are listed in
            "ci95": list(bootstrap_ci(sorted(finals))) if finals else None,
            "train_wall_s_mean": sum(train_wall) / len(train_wall) if train_wall else None,
            "trial_wall_s_mean": sum(trial_wall) / len(trial_wall) if trial_wall else None,
        }
        rows.append(row)
    ranked = sorted((r for r in rows if r["iqm"] is not None), key=lambda r: -r["iqm"])
    for rank, r in enumerate(ranked, 1):
        r["rank"] = rank
    return {"algo": plan.algo, "statistic": STATISTIC, "configs": rows}


def _fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def render_markdown(results: dict[str, Any], plan: SweepPlan) -> str:
    """The results as a markdown table, best configuration first."""
    env = plan.base_train.get("env", "")
    lines = [
        f"# Sweep results: {plan.algo} on {env}",
        "",
        f"{len(plan.configs)} configuration(s) × {len(plan.seeds)} seed(s) {list(plan.seeds)}, {plan.search} search, "
        f"{plan.scheduler.kind} scheduler. Final return: the evaluation at the end of each run (summary.json); "
        "IQM over the finished seeds with a 95% percentile-bootstrap interval. Train s: collecting and updating per "
        "seed; trial s: the whole trial per seed (start-up, evaluations, checkpoints, retries).",
        "",
        "| rank | config | overrides | seeds done | IQM final return | 95% CI | train s | trial s |",
        "|---:|---|---|---|---:|---|---:|---:|",
    ]
    rows = sorted(results["configs"], key=lambda r: r.get("rank", 1 << 30))
    for r in rows:
        overrides = ", ".join(f"{k.split('.', 1)[1]}={json.dumps(v)}" for k, v in r["overrides"].items()) or "(base)"
        s = r["seeds"]
        total = sum(len(v) for v in s.values())
        done = f"{len(s['finished'])}/{total}"
        notes = [f"{len(s[k])} {k}" for k in ("stopped", "failed", "unfinished") if s[k]]
        if notes:
            done += f" ({', '.join(notes)})"
        ci = "—" if r["ci95"] is None else f"[{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}]"
        lines.append(
            f"| {r.get('rank', '—')} | {r['config']} | {overrides} | {done} | {_fmt(r['iqm'])} | {ci} | "
            f"{_fmt(r['train_wall_s_mean'])} | {_fmt(r['trial_wall_s_mean'])} |"
        )
    return "\n".join(lines) + "\n"


def write_results(plan: SweepPlan, sweep_dir: Path, statuses: dict[str, str]) -> dict[str, Any]:
    """Aggregate and write `results.json` and `results.md`; returns the results."""
    results = aggregate(plan, sweep_dir, statuses)
    atomic_write_text(sweep_dir / "results.json", json.dumps(results, indent=1))
    atomic_write_text(sweep_dir / "results.md", render_markdown(results, plan))
    return results
