"""What a trial costs when it runs through `robot-rl sweep` (Ray Tune) instead of as a plain `robot-rl train` run.

For each size N in `--sizes`, side by side on the same cores, the same N trials (one algorithm, env and budget;
seeds 0..N-1) run two ways:

- `direct`: N `robot-rl train` processes, `--parallel` at a time, each with one torch thread and no progress bar:
  what a user would script by hand;
- `sweep`: one `robot-rl sweep` process over the same seeds on a local Ray with `--cpus PARALLEL` (one trial per
  CPU), which starts Ray, runs every trial as a Tune trial and writes its tables, then shuts Ray down.

Each is timed from launch to exit (wall-clock). Rounds alternate the order of the two ways (ABBA), so a drift in
the machine's speed falls on both. Per way, a line through the sizes, wall = fixed + per_wave x waves (waves =
ceil(N / PARALLEL), the rounds of trials the cores run), splits the difference into a fixed cost (Ray start and
shutdown, Tune's setup, the results table) and a cost per trial slot. Also reported: each trial's own training
wall-clock (`summary.json` `train_wall_s`) both ways, i.e. whether training itself runs slower inside a Tune
trial.

Writes <out-dir>/sweep_overhead.{json,md}.

Usage: .venv/bin/python bench/sweep_overhead.py [--sizes 2 6] [--parallel 2] [--rounds 2] [--total-steps 1500]
       .venv/bin/python bench/sweep_overhead.py --from-json docs/benchmarks/sweep_overhead.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from bench.bench_common import cpu_model  # noqa: E402

MODES = ("direct", "sweep")
"""The two ways the same trials run: plain `robot-rl train` processes, and one `robot-rl sweep`."""
SINGLE_THREAD = ["--torch-threads", "1", "--no-progress"]
"""What a sweep gives every trial (one torch thread, no progress bar), given to the plain runs too."""


def waves(trials: int, parallel: int) -> int:
    """Rounds of trials `parallel` slots run for `trials` trials."""
    return math.ceil(trials / parallel)


def cli() -> list[str]:
    """The `robot-rl` command of this interpreter's environment (the checkout's venv when run from it)."""
    script = Path(sys.executable).with_name("robot-rl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "robot_rl.cli"]


def train_flags(args: argparse.Namespace) -> list[str]:
    """The training flags every trial gets, both ways."""
    return [
        "--env",
        args.env,
        "--total-steps",
        str(args.total_steps),
        "--learning-starts",
        str(args.learning_starts),
        "--eval-every",
        str(args.total_steps),
        "--eval-episodes",
        str(args.eval_episodes),
        "--no-tensorboard",
    ]


def run_direct(args: argparse.Namespace, n: int, out: Path) -> tuple[float, list[float]]:
    """N `robot-rl train` runs, `args.parallel` at a time: (wall-clock s, each run's train_wall_s)."""

    def command(seed: int) -> list[str]:
        where = ["--out-dir", str(out), "--run-name", f"direct-s{seed}"]
        return [*cli(), "train", args.algo, *train_flags(args), "--seed", str(seed), *where, *SINGLE_THREAD]

    pending = [command(seed) for seed in range(n)]
    running: list[tuple[subprocess.Popen[bytes], Path]] = []
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    while pending or running:
        while pending and len(running) < args.parallel:
            log = out / f"train-{len(pending)}.log"  # a file, not a pipe: a chatty run cannot block on a full pipe
            with log.open("wb") as err:
                running.append((subprocess.Popen(pending.pop(0), stdout=subprocess.DEVNULL, stderr=err), log))
        time.sleep(0.05)
        for p, log in [(p, log) for p, log in running if p.poll() is not None]:
            running.remove((p, log))
            if p.returncode != 0:
                raise RuntimeError(f"robot-rl train exited {p.returncode}: {log.read_text(errors='replace')[-2000:]}")
    wall = time.perf_counter() - t0
    trains = [json.loads((out / f"direct-s{s}" / "summary.json").read_text())["train_wall_s"] for s in range(n)]
    return wall, trains


def run_sweep(args: argparse.Namespace, n: int, out: Path) -> tuple[float, list[float]]:
    """One `robot-rl sweep` over seeds 0..N-1: (wall-clock s, each trial's train_wall_s)."""
    seeds = [str(s) for s in range(n)]
    where = ["--cpus", str(args.parallel), "--out", str(out / "sweep"), "--no-progress"]
    cmd = [*cli(), "sweep", args.algo, *train_flags(args), "--seeds", *seeds, *where]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"robot-rl sweep exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    record = json.loads((out / "sweep" / "sweep.json").read_text())
    trials = record["trials"].values()
    if any(t["status"] != "finished" for t in trials):
        raise RuntimeError(f"sweep trials did not all finish: {[t['status'] for t in trials]}")
    return wall, [float(t["train_wall_s"]) for t in trials]


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (round, size, mode) timing, ABBA order per size and round."""
    rows = []
    work = Path(tempfile.mkdtemp(prefix="sweep-overhead-", dir=args.work_dir))
    try:
        for rnd in range(args.rounds):
            for n in args.sizes:
                order = MODES if rnd % 2 == 0 else tuple(reversed(MODES))
                for mode in order:
                    out = work / f"r{rnd}-n{n}-{mode}"
                    wall, trains = (run_direct if mode == "direct" else run_sweep)(args, n, out)
                    shutil.rmtree(out, ignore_errors=True)
                    trains_s = [round(t, 2) for t in trains]
                    rows.append(
                        {"round": rnd, "trials": n, "mode": mode, "wall_s": round(wall, 2), "train_wall_s": trains_s}
                    )
                    print(f"round {rnd} N={n} {mode}: {wall:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


# ----------------------------------------------------------------------------- report (pure)


def summarize(rows: Sequence[dict[str, Any]], parallel: int) -> dict[str, Any]:
    """Per size: mean wall both ways and the sweep's extra seconds per trial; per way: the line
    wall = fixed + per_wave x waves through the sizes' means (least squares); the overhead split from the two lines."""
    sizes = sorted({int(r["trials"]) for r in rows})
    mean_wall = {
        m: {n: fmean([r["wall_s"] for r in rows if r["mode"] == m and r["trials"] == n]) for n in sizes} for m in MODES
    }
    per_size = []
    for n in sizes:
        extra = mean_wall["sweep"][n] - mean_wall["direct"][n]
        per_size.append({
            "trials": n,
            "waves": waves(n, parallel),
            "direct_wall_s": round(mean_wall["direct"][n], 2),
            "sweep_wall_s": round(mean_wall["sweep"][n], 2),
            "extra_per_trial_s": round(extra / n, 2),
            "sweep_over_direct": round(mean_wall["sweep"][n] / mean_wall["direct"][n], 3),
        })  # fmt: skip
    fits: dict[str, dict[str, float]] = {}
    xs = [float(waves(n, parallel)) for n in sizes]
    if len(set(xs)) > 1:
        for m in MODES:
            slope, fixed = np.polyfit(xs, [mean_wall[m][n] for n in sizes], 1)
            fits[m] = {"fixed_s": round(float(fixed), 2), "per_wave_s": round(float(slope), 2)}
    train = {m: fmean([t for r in rows if r["mode"] == m for t in r["train_wall_s"]]) for m in MODES}
    cells = [[r["wall_s"] for r in rows if r["mode"] == m and r["trials"] == n] for m in MODES for n in sizes]
    out: dict[str, Any] = {
        "per_size": per_size,
        "fit": fits,
        "train_wall_s_mean": {m: round(v, 2) for m, v in train.items()},
        # how far the rounds of one (size, way) lie from their mean: the noise an overhead must exceed
        "round_spread_s": round(fmean([(max(c) - min(c)) / 2 for c in cells]), 2),
    }
    if fits:
        out["fixed_overhead_s"] = round(fits["sweep"]["fixed_s"] - fits["direct"]["fixed_s"], 2)
        out["per_trial_slot_overhead_s"] = round(fits["sweep"]["per_wave_s"] - fits["direct"]["per_wave_s"], 2)
    return out


def per_round_words(summary: dict[str, Any]) -> str:
    """The cost per round of trials, in words: a cost, a saving, or nothing the rounds' own spread would not
    explain."""
    per, spread = summary["per_trial_slot_overhead_s"], summary["round_spread_s"]
    if abs(per) <= spread:
        return (
            f"**and nothing measurable per round of trials** ({per:+.1f} s, inside the ±{spread:.1f} s by which "
            "repeated rounds of the same run differ)"
        )
    kind = "a cost" if per > 0 else "a saving"
    return f"**and {per:+.1f} s per round of trials** ({kind} beyond the rounds' ±{spread:.1f} s spread)"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown; every figure and comparison from the JSON."""
    cfg, s = report["config"], report["summary"]
    par = cfg["parallel"]
    lines = [
        "# Sweep overhead: trials through `robot-rl sweep` (Ray Tune) vs plain `robot-rl train` runs",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"The same trials both ways: `{cfg['algo']}` on `{cfg['env']}`, {cfg['total_steps']:,} env steps each "
        f"({cfg['learning_starts']:,} before learning), one evaluation of {cfg['eval_episodes']} episodes at the end, "
        f"seeds 0..N-1, one torch thread per trial, {par} trials at a time (`direct`: {par} `robot-rl train` "
        f"processes at a time; `sweep`: one `robot-rl sweep --cpus {par}` on a local Ray, started and shut down by "
        f"the command). Wall-clock from launch to exit, mean of {cfg['rounds']} rounds in alternating order. "
        f"Machine: {report['machine']['cpu_model']}, {report['machine']['logical_cpus']} logical CPUs.",
        "",
        "| trials N | rounds of trials | direct wall s | sweep wall s | sweep / direct | extra s per trial |",
        "|---|---|---|---|---|---|",
    ]
    for row in s["per_size"]:
        lines.append(
            f"| {row['trials']} | {row['waves']} | {row['direct_wall_s']:.1f} | {row['sweep_wall_s']:.1f} | "
            f"{row['sweep_over_direct']:.2f}× | {row['extra_per_trial_s']:+.1f} |"
        )
    lines.append("")
    if s.get("fit"):
        f = s["fit"]
        lines += [
            "A line through the sizes per way, wall = fixed + per round of trials × rounds:",
            "",
            "| way | fixed s | s per round of trials |",
            "|---|---|---|",
            *(f"| {m} | {f[m]['fixed_s']:.1f} | {f[m]['per_wave_s']:.1f} |" for m in MODES),
            "",
            f"**A sweep costs {s['fixed_overhead_s']:+.1f} s once** (Ray's start and shutdown, Tune's setup, the "
            f"results table) over running the same trials as plain processes, {per_round_words(s)}.",
            "",
        ]
    tw = s["train_wall_s_mean"]
    lines.append(
        f"Training time inside each trial (`train_wall_s`, mean over trials): {tw['direct']:.1f} s as a plain run, "
        f"{tw['sweep']:.1f} s as a Tune trial ({tw['sweep'] / tw['direct']:.2f}×)."
    )
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out_dir: Path, write_json: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "sweep_overhead.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "sweep_overhead.md").write_text(markdown(report))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algo", default="sac", help="registered algorithm every trial trains")
    ap.add_argument("--env", default="Pendulum-v1", help="env id every trial trains on")
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 6], help="trial counts N to time")
    ap.add_argument("--parallel", type=int, default=2, help="trials at a time (the sweep's --cpus)")
    ap.add_argument("--rounds", type=int, default=2, help="repetitions of every (N, way), alternating order")
    ap.add_argument("--total-steps", type=int, default=1500, help="env steps per trial")
    ap.add_argument("--learning-starts", type=int, default=500, help="env steps before the first update")
    ap.add_argument("--eval-episodes", type=int, default=2, help="episodes of the trial's one evaluation")
    ap.add_argument("--work-dir", type=Path, default=None, help="where the runs go (deleted after timing)")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--from-json", type=Path, default=None, help="re-render the markdown of a committed JSON")
    args = ap.parse_args(argv)
    if args.from_json:  # the summary is derived data: recomputed from the timings, so it follows this code
        report = json.loads(args.from_json.read_text())
        report["summary"] = summarize(report["runs"], report["config"]["parallel"])
        write(report, args.out_dir, write_json=False)
        return 0
    if min(args.sizes) < 1 or args.parallel < 1 or args.rounds < 1:
        ap.error("--sizes, --parallel and --rounds must be >= 1")
    command = shlex.join(["python", "bench/sweep_overhead.py", *(argv if argv is not None else sys.argv[1:])])
    rows = measure(args)
    report = {
        "command": command,
        "config": {k: v for k, v in vars(args).items() if k not in ("work_dir", "out_dir", "from_json")},
        "machine": {"cpu_model": cpu_model(), "logical_cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": rows,
        "summary": summarize(rows, args.parallel),
    }
    write(report, args.out_dir)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
