"""Training cost (gradient steps per second) of each offline learner on the PandaPush expert dataset.

Every method of `bench/generative_success.py` (the same learner configs; a distilled method with a short run of
its teacher's method as the teacher, `TEACHER_UPDATES`) is trained offline on the same scripted-expert dataset
through the driver the CLI uses (`robot_rl.train.loop.train`), for a fixed number of gradient steps, with nothing
else in the process. After an untimed warm-up run of each method (the process's one-time costs), the runs are
interleaved: `--rounds` rounds, each running every method once in an order rotated by one per round, so load from
other processes hits every method alike. The peer is `bc_chunk`, the chunked MLP on the same data pipeline
(the same chunked batches, H = 16, T_o = 2, batch 256, from the same dataset): each method's steps/s is divided by
the peer's in the same round, and the median of those ratios is reported.

The timed figure is the driver's `RunResult.train_wall_s`: the summed wall-clock of the `Algorithm.update` calls
(each pulls its batch from the dataset sampler, so batch sampling is counted) and the finite check of their
statistics. The dataset load, the normalizer fit, metric writes, the final evaluation episode and the final
checkpoint are outside it (the whole `train` call's wall-clock is in the JSON as `call_wall_s`). A second figure,
steps/s after the first 10% of the updates (from the run's `metrics.jsonl`, whose `wall_s` is that same clock),
leaves out first-call warm-up.

Writes <out-dir>/generative_training_cost.{json,md}.

Usage: .venv/bin/python bench/generative_training_cost.py [--updates 500] [--rounds 3] [--methods ...]
           [--warmup-updates 20] [--episodes 200] [--torch-threads 1] [--out-dir docs/benchmarks] [--work-dir DIR]
       .venv/bin/python bench/generative_training_cost.py --from-json docs/benchmarks/generative_training_cost.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_common import cpu_model  # noqa: E402
from bench.generative_success import METHODS, PUSH, TASKS, algo_config, expert_dataset, slug  # noqa: E402
from robot_rl.train.config import TrainConfig  # noqa: E402
from robot_rl.train.loop import train  # noqa: E402

PEER = "bc_chunk"
"""The method every ratio is against: the chunked MLP, trained on the same chunked batches as the generative ones."""
WARM_FRACTION = 0.1
"""Share of the updates left out of the warm figure (the first log interval: `log_every` = updates / 10)."""
MIN_HEADLINE_ROUNDS, MIN_HEADLINE_UPDATES = 3, 500
"""Below either, the report calls itself a smoke run."""


def rotated(methods: Sequence[str], round_index: int) -> list[str]:
    """The run order of one round: `methods` rotated left by `round_index`."""
    k = round_index % len(methods)
    return [*methods[k:], *methods[:k]]


def warm_updates_per_s(metrics_jsonl: Path) -> float | None:
    """Steps/s between the first and the last `time/updates_per_s` log line of a run (None with fewer than two)."""
    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "time/updates_per_s" in r]
    if len(rows) < 2 or rows[-1]["wall_s"] <= rows[0]["wall_s"]:
        return None
    return float(rows[-1]["step"] - rows[0]["step"]) / float(rows[-1]["wall_s"] - rows[0]["wall_s"])


TEACHER_UPDATES = 20
"""Gradient steps of the stand-in teacher a distilled method is timed with: the student's step costs the teacher's
forward pass, whatever the teacher has learned, so a short run of the teacher's method is enough."""


def cost_teacher(method: str, dataset: Path, runs: Path, torch_threads: int) -> str:
    """The run directory of `method`'s teacher (`METHODS[method].teacher`) for timing only: a `TEACHER_UPDATES`-step
    run of the teacher's method on `dataset`, trained once per folder, untimed ("" for a method without one)."""
    teacher = METHODS[method].teacher
    if not teacher:
        return ""
    run_dir = runs / "teachers" / f"{slug(PUSH)}-{teacher}"
    if not (run_dir / "summary.json").exists():
        run_one(teacher, 0, dataset, runs / "teachers", TEACHER_UPDATES, torch_threads, keep=True)
    return str(run_dir)


def run_one(
    method: str,
    round_index: int,
    dataset: Path,
    runs: Path,
    updates: int,
    torch_threads: int,
    keep: bool = False,
) -> dict[str, Any]:
    """Train `method` for `updates` gradient steps on `dataset`; the JSON-ready record (the run dir is removed
    unless `keep`: a teacher's is named `<task>-<method>`). A distilled method trains with `cost_teacher`'s run."""
    name = f"{slug(PUSH)}-{method}" if keep else f"{slug(PUSH)}-{method}-r{round_index}"
    cfg = TrainConfig(
        env=PUSH,
        data="offline",
        dataset=str(dataset),
        total_steps=updates,
        seed=round_index,
        eval_every=0,
        eval_episodes=1,  # the driver's final check (>= 1 required); outside train_wall_s
        checkpoint_every=0,
        out_dir=runs,
        run_name=name,
        torch_threads=torch_threads,
        log_every=max(1, round(updates * WARM_FRACTION)),
        progress=False,
        tensorboard=False,
    )
    learner = algo_config(method)
    teacher = cost_teacher(method, dataset, runs, torch_threads)
    if teacher:
        learner = dataclasses.replace(learner, teacher=teacher)
    load_1m = os.getloadavg()[0]
    t0 = time.perf_counter()
    result = train(cfg, METHODS[method].algo, learner)
    call_s = time.perf_counter() - t0
    warm = warm_updates_per_s(result.run_dir / "metrics.jsonl")
    if not keep:
        shutil.rmtree(result.run_dir, ignore_errors=True)
    return {
        "round": round_index,
        "method": method,
        "algo": METHODS[method].algo,
        "updates": result.steps,
        "train_wall_s": round(result.train_wall_s, 3),
        "updates_per_s": round(result.steps / max(result.train_wall_s, 1e-9), 2),
        "warm_updates_per_s": None if warm is None else round(warm, 2),
        "call_wall_s": round(call_s, 2),
        "load_avg_1m_before": round(load_1m, 2),
    }


# ----------------------------------------------------------------------------- summary and report (pure)


def summarize(records: Sequence[dict[str, Any]], peer: str = PEER) -> dict[str, dict[str, Any]]:
    """Per method (table order): median, min and max steps/s over rounds, median wall-clock, median warm steps/s,
    and the median over rounds of its steps/s divided by the peer's in the same round (None without the peer)."""
    by_round: dict[int, dict[str, float]] = {}
    for r in records:
        by_round.setdefault(int(r["round"]), {})[r["method"]] = float(r["updates_per_s"])
    out: dict[str, dict[str, Any]] = {}
    for method in [m for m in METHODS if any(r["method"] == m for r in records)]:
        rs = [r for r in records if r["method"] == method]
        ups = [float(r["updates_per_s"]) for r in rs]
        warm = [float(r["warm_updates_per_s"]) for r in rs if r.get("warm_updates_per_s") is not None]
        ratios = [by[method] / by[peer] for by in by_round.values() if method in by and by.get(peer, 0.0) > 0.0]
        out[method] = {
            "rounds": len(rs),
            "updates": sorted({int(r["updates"]) for r in rs}),
            "updates_per_s_median": round(float(np.median(ups)), 2),
            "updates_per_s_min": round(min(ups), 2),
            "updates_per_s_max": round(max(ups), 2),
            "train_wall_s_median": round(float(np.median([r["train_wall_s"] for r in rs])), 2),
            "warm_updates_per_s_median": round(float(np.median(warm)), 2) if warm else None,
            "ratio_to_peer_median": round(float(np.median(ratios)), 4) if ratios else None,
            "ratio_to_peer_rounds": len(ratios),
        }
    return out


def build_report(
    records: list[dict[str, Any]],
    config: dict[str, Any],
    command: str,
    machine: dict[str, Any],
    dataset: dict[str, Any],
) -> dict[str, Any]:
    """The JSON document: the raw per-run records and every derived figure."""
    return {
        "command": command,
        "config": config,
        "machine": machine,
        "dataset": dataset,
        "peer": PEER,
        "headline": config["rounds"] >= MIN_HEADLINE_ROUNDS and config["updates"] >= MIN_HEADLINE_UPDATES,
        "runs": records,
        "summary": summarize(records, PEER),
    }


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown; every figure in the prose is computed from the JSON."""
    cfg, m, data, summary = report["config"], report["machine"], report["dataset"], report["summary"]
    peer = report["peer"]
    updates = " / ".join(f"{u:,}" for u in sorted({int(r["updates"]) for r in report["runs"]}))
    loads = [float(r["load_avg_1m_before"]) for r in report["runs"]]
    lines = [
        f"# Training cost of the offline learners on {cfg['env'].split('/')[-1]} expert data",
        "",
        "```",
        report["command"],
        "```",
        "",
    ]
    if not report["headline"]:
        lines += [
            f"**{_n(cfg['rounds'], 'round')} of {cfg['updates']:,} gradient steps: below the "
            f"{MIN_HEADLINE_ROUNDS} rounds of {MIN_HEADLINE_UPDATES:,} steps this benchmark quotes (a smoke run, "
            "not a figure to quote).**",
            "",
        ]
    lines += [
        f"Offline training (`robot_rl.train.loop.train`, the CLI's driver) on {data['dataset_episodes']} "
        f"scripted-expert episodes of {cfg['env']} ({data['dataset_transitions']:,} transitions), {updates} "
        f"gradient steps per run, batch 256, the learner configs of `bench/generative_success.py`. "
        f"{_n(cfg['rounds'], 'round')}; each round trains every method once (seed = the round's index, so every "
        "method of a round draws the same batches), in an order rotated by one per round, so load from other "
        "processes hits every method alike; one run at a time, nothing else in the process"
        + (
            f", after an untimed run of {cfg['warmup_updates']:,} steps of each method (the process's one-time costs)."
            if cfg.get("warmup_updates")
            else "."
        ),
        "",
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, {_n(m['torch_threads'], 'torch thread')}; "
        f"Python {m['python']}, torch {m['torch']}. 1-minute load average before each run (this benchmark's own "
        f"thread(s) included): {min(loads):.2f}–{max(loads):.2f}"
        + (
            f"; above the {m['logical_cpus']} cores at times: other processes competed for them."
            if max(loads) > m["logical_cpus"]
            else f", never above the {m['logical_cpus']} cores."
        ),
        "",
        f"| method | learner | steps/s (median) | min–max | wall-clock s (median) | steps/s after the first "
        f"{WARM_FRACTION:.0%} (median) | steps/s ÷ {peer}'s (median over rounds) |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, s in summary.items():
        algo = next(r["algo"] for r in report["runs"] if r["method"] == method)
        warm = "–" if s["warm_updates_per_s_median"] is None else f"{s['warm_updates_per_s_median']:.1f}"
        lines.append(
            f"| {method} | {algo} | {s['updates_per_s_median']:.1f} | {s['updates_per_s_min']:.1f}–"
            f"{s['updates_per_s_max']:.1f} | {s['train_wall_s_median']:.1f} | {warm} | "
            f"{_ratio(s['ratio_to_peer_median'])} |"
        )
    lines += [
        "",
        f"The peer is `{peer}`: the chunked MLP (H = 16, H_a = 8, T_o = 2) trained through the same data pipeline "
        "as the generative learners (the same chunked batches of 256 from the same dataset), so the ratio is the "
        "cost of each learner's update against a plain regression step on identical batches. `bc` (one action, "
        "H = 1) samples single-step batches, so its ratio also reflects the different sampling.",
    ]
    teachers = cfg.get("teachers", {})
    if teachers:
        lines += [
            "",
            "Distilled methods train against a teacher whose forward pass is part of every step: "
            + "; ".join(
                f"`{m}` is timed with a {t['updates']:,}-step `{t['method']}` run as its teacher (what the teacher has "
                "learned does not change the cost)"
                for m, t in teachers.items()
            )
            + ".",
        ]
    rated = {k: s for k, s in summary.items() if k != peer and s["ratio_to_peer_median"] is not None}
    if rated:
        slow = min(rated, key=lambda k: rated[k]["ratio_to_peer_median"])
        ratio = rated[slow]["ratio_to_peer_median"]
        lines += [
            "",
            f"Slowest: `{slow}` at {ratio:.2f}× the peer's steps/s, i.e. {1 / ratio:.1f}× its time per gradient step.",
        ]
    spreads = {k: (s["updates_per_s_max"] - s["updates_per_s_min"]) / s["updates_per_s_median"]
               for k, s in summary.items() if s["rounds"] > 1 and s["updates_per_s_median"] > 0}  # fmt: skip
    if spreads:
        widest = max(spreads, key=lambda k: spreads[k])
        lines += [
            "",
            f"Noise left after interleaving: the widest min–max range over rounds is {spreads[widest]:.0%} of its "
            f"median (`{widest}`).",
        ]
    calls = [float(r["call_wall_s"]) - float(r["train_wall_s"]) for r in report["runs"]]
    lines += [
        "",
        "What is timed: the driver's `train_wall_s`, the summed wall-clock of the `Algorithm.update` calls (each "
        "pulls its batch from the dataset sampler, so sampling is counted) and the finite check of their "
        "statistics. Outside it: the dataset load, the normalizer fit, metric writes, the final evaluation "
        "episode and the final checkpoint (together "
        f"{min(calls):.1f}–{max(calls):.1f} s per run here, `call_wall_s` − `train_wall_s` in the JSON). "
        f"Steps/s after the first {WARM_FRACTION:.0%} is from the run's `metrics.jsonl` on that same clock, "
        "leaving first-call warm-up out. Per-run records are in the JSON (`runs`).",
        "",
    ]
    return "\n".join(lines)


def write(report: dict[str, Any], out_dir: Path, write_json: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "generative_training_cost.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "generative_training_cost.md").write_text(markdown(report))


# ----------------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help=f"{PEER} (the peer) always runs"
    )
    ap.add_argument("--updates", type=int, default=MIN_HEADLINE_UPDATES, help="gradient steps per run")
    ap.add_argument("--rounds", type=int, default=MIN_HEADLINE_ROUNDS, help="interleaved rounds (every method once)")
    ap.add_argument(
        "--warmup-updates", type=int, default=20, help="untimed run of each method first, this long (0 = none)"
    )
    ap.add_argument("--episodes", type=int, default=TASKS[PUSH].episodes, help="expert episodes in the dataset")
    ap.add_argument("--torch-threads", type=int, default=1, help="learner intra-op threads (0 = one per core)")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--work-dir", type=Path, help="holds datasets/<task>-<episodes> (default: a temp dir, removed)")
    ap.add_argument("--from-json", type=Path, help="re-render generative_training_cost.md from this JSON (no training)")
    args = ap.parse_args(argv)
    if args.from_json:
        write(json.loads(args.from_json.read_text()), args.out_dir, write_json=False)
        return 0
    if min(args.updates, args.rounds, args.episodes) < 1 or min(args.torch_threads, args.warmup_updates) < 0:
        ap.error("--updates, --rounds and --episodes must be >= 1, --torch-threads and --warmup-updates >= 0")
    methods = [m for m in METHODS if m in args.methods or m == PEER]  # table order; the peer always runs

    command = (".venv/bin/python bench/generative_training_cost.py " + shlex.join(argv or sys.argv[1:])).strip()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="generative-training-cost-"))
    dataset = work / "datasets" / f"{slug(PUSH)}-{args.episodes}"  # generative_success.py's layout: reused
    records: list[dict[str, Any]] = []
    try:
        info = expert_dataset(PUSH, args.episodes, dataset)
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="generative-training-cost-runs-") as runs:
            for method in methods if args.warmup_updates else []:  # the process's one-time costs, not recorded
                run_one(method, 0, dataset, Path(runs) / "warmup", args.warmup_updates, args.torch_threads)
            for rnd in range(args.rounds):
                for method in rotated(methods, rnd):
                    rec = run_one(method, rnd, dataset, Path(runs), args.updates, args.torch_threads)
                    records.append(rec)
                    print(
                        f"round {rnd + 1}/{args.rounds} {method}: {rec['updates_per_s']:.1f} steps/s "
                        f"({rec['train_wall_s']:.1f} s, load {rec['load_avg_1m_before']:.2f})",
                        flush=True,
                    )
        load_after = os.getloadavg()[0]
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    config = {
        "env": PUSH,
        "methods": methods,
        "algo_configs": {m: dataclasses.asdict(algo_config(m)) for m in methods},
        "teachers": {
            m: {"method": METHODS[m].teacher, "updates": TEACHER_UPDATES} for m in methods if METHODS[m].teacher
        },
        "updates": args.updates,
        "rounds": args.rounds,
        "warmup_updates": args.warmup_updates,
        "episodes": args.episodes,
        "torch_threads": args.torch_threads,
    }
    machine = {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "load_avg_1m_before_after": [round(load_before, 2), round(load_after, 2)],
        "niceness": os.nice(0),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    write(build_report(records, config, command, machine, info), args.out_dir)
    print(f"wrote {args.out_dir / 'generative_training_cost.json'} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
