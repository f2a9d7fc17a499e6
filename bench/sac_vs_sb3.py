"""Stable-Baselines3 SAC vs robot_rl SAC, side by side on this machine.

    python bench/sac_vs_sb3.py throughput             # env-steps/s, Hopper-v5 + HalfCheetah-v5
    python bench/sac_vs_sb3.py returns --steps 50000  # Hopper-v5 returns, SB3 vs classic vs CrossQ
    python bench/sac_vs_sb3.py report                 # tables, JSON and plots under docs/benchmarks/

Every run is its own subprocess (clean thread settings). Identical hyperparameters: 256x256 MLPs,
batch 256, lr 3e-4, tau 0.005, gamma 0.99, UTD 1, automatic entropy (init 1.0, target -|A|),
1M buffer. Evaluation of both uses robot_rl.train.evaluate with the same seeded episodes; its time is
excluded from the wall-clock of both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks"
RUNS_LOG = RESULTS / "sac_vs_sb3_runs"
SCRATCH = Path(os.environ.get("BENCH_SCRATCH", "/tmp/robot_rl_bench"))
TARGET_THROUGHPUT_RATIO = 1.8
"""Issue target: robot_rl env-steps/s over SB3's, each at its best thread count."""
TARGET_WALLCLOCK_SPEEDUP = 3.0
"""Issue target: the sample-efficient recipe reaches SB3's final return this many times faster (wall-clock)."""


# ----------------------------------------------------------------------------- single runs (subprocess)


def sb3_sac_kwargs(learning_starts: int, seed: int) -> dict[str, Any]:
    """SB3 SAC's hyperparameters in every side-by-side comparison (identical to robot_rl's SAC defaults)."""
    return {
        "learning_rate": 3e-4, "buffer_size": 1_000_000, "learning_starts": learning_starts, "batch_size": 256,
        "tau": 0.005, "gamma": 0.99, "train_freq": 1, "gradient_steps": 1, "ent_coef": "auto",
        "policy_kwargs": {"net_arch": [256, 256]}, "seed": seed,
    }  # fmt: skip


def run_sb3(
    env_id: str,
    seed: int,
    steps: int,
    learning_starts: int,
    eval_every: int,
    eval_episodes: int,
    threads: int,
    out_csv: Path,
) -> dict[str, float]:
    import numpy as np
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger

    from robot_rl.train.evaluate import evaluate

    torch.set_num_threads(threads)
    model = SAC(
        "MlpPolicy",
        env_id,
        **sb3_sac_kwargs(learning_starts, seed),
        device="cpu",
        verbose=0,
    )
    rows: list[tuple[int, float, float, float]] = []
    marks: dict[str, float] = {}

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.t0 = time.perf_counter()
            self.excluded = 0.0

        def wall(self) -> float:
            return time.perf_counter() - self.t0 - self.excluded

        def _on_step(self) -> bool:
            n = self.num_timesteps
            if n == learning_starts:
                marks["update_start_wall"] = self.wall()
            if eval_every and n % eval_every == 0:
                t = time.perf_counter()
                res = evaluate(
                    lambda o: model.predict(o, deterministic=True)[0].astype(np.float32), env_id, eval_episodes, seed
                )
                rows.append((n, self.wall(), res.mean_return, res.std_return))
                self.excluded += time.perf_counter() - t
            return True

    clock = Clock()
    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default logger makes a folder under /tmp
    model.learn(total_timesteps=steps, callback=clock)
    end = clock.wall()
    _write_csv(out_csv, rows)
    window = steps - learning_starts
    return {"steps_per_s_updates": window / (end - marks.get("update_start_wall", 0.0)), "wall_s": end}


def run_ours(
    env_id: str,
    seed: int,
    steps: int,
    learning_starts: int,
    eval_every: int,
    eval_episodes: int,
    threads: int,
    out_csv: Path,
    recipe: str,
    overlap: bool,
) -> dict[str, float]:
    import shutil

    from robot_rl.algos.sac.config import SACConfig
    from robot_rl.train.config import TrainConfig
    from robot_rl.train.loop import train

    name = f"ours-{recipe}-{env_id}-s{seed}-t{threads}-{int(time.time() * 1e3)}"
    cfg = TrainConfig(
        env=env_id,
        total_steps=steps,
        seed=seed,
        learning_starts=learning_starts,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        checkpoint_every=0,
        out_dir=SCRATCH,
        run_name=name,
        torch_threads=threads,
        overlap_env=overlap,
        log_every=500,
        progress=False,
        tensorboard=False,
    )
    result = train(cfg, "sac", SACConfig.preset(recipe))
    run_dir = result.run_dir
    rows = []
    marks = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "eval/mean_return" in rec:
            rows.append((rec["step"], rec["wall_s"], rec["eval/mean_return"], rec["eval/std_return"]))
        if "time/steps_per_s" in rec and rec["step"] >= learning_starts and "update_start_wall" not in marks:
            marks["update_start_wall"], marks["update_start_step"] = rec["wall_s"], rec["step"]
    if not eval_every:
        rows = []
    _write_csv(out_csv, rows)
    shutil.rmtree(run_dir, ignore_errors=True)
    window = steps - marks.get("update_start_step", 0)
    return {
        "steps_per_s_updates": window / (result.train_wall_s - marks.get("update_start_wall", 0.0)),
        "wall_s": result.train_wall_s,
    }


def _write_csv(path: Path | str, rows: list[tuple[int, float, float, float]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write("step,wall_s,mean_return,std_return\n")
        for r in rows:
            f.write(f"{r[0]},{r[1]:.3f},{r[2]:.3f},{r[3]:.3f}\n")


def _single(argv: list[str]) -> None:
    """Entry of one subprocess: `_single <json job>`; prints a JSON result line."""
    job = json.loads(argv[0])
    kind = job.pop("kind")
    out = run_sb3(**job) if kind == "sb3" else run_ours(**job)
    print("RESULT " + json.dumps(out), flush=True)


def spawn(job: dict[str, object]) -> dict[str, float]:
    # Same OpenMP settings for both peers (robot_rl sets a short spin count on import; SB3 would not).
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(job["threads"]),
        "MKL_NUM_THREADS": str(job["threads"]),
        "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT", "2000"),
    }
    job = {**job, "out_csv": str(job["out_csv"])}
    proc = subprocess.run(
        [sys.executable, __file__, "_single", json.dumps(job)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"bench job failed: {job}\n{proc.stderr[-3000:]}")


# ----------------------------------------------------------------------------- experiments


def throughput(args: argparse.Namespace) -> None:
    out: dict[str, object] = {
        "command": " ".join(sys.argv),
        "window_update_steps": args.window,
        "learning_starts": args.learning_starts,
        "runs": [],
    }
    for env_id in args.envs:
        for threads in (1, 2):
            for kind, recipe in (("sb3", ""), ("ours", "classic"), ("ours", "crossq")):
                job: dict[str, object] = dict(
                    kind=kind,
                    env_id=env_id,
                    seed=0,
                    steps=args.learning_starts + args.window,
                    learning_starts=args.learning_starts,
                    eval_every=0,
                    eval_episodes=1,
                    threads=threads,
                    out_csv=SCRATCH / "tp.csv",
                )
                if kind == "ours":
                    job.update(recipe=recipe, overlap=False)
                res = spawn(job)
                row = {
                    "env": env_id,
                    "impl": {"": "sb3", "classic": "robot_rl", "crossq": "robot_rl_crossq"}[recipe],
                    "torch_threads": threads,
                    "steps_per_s": round(res["steps_per_s_updates"], 2),
                }
                print(row, flush=True)
                out["runs"].append(row)  # type: ignore[union-attr]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sac_vs_sb3_throughput_raw.json").write_text(json.dumps(out, indent=1))


def returns(args: argparse.Namespace) -> None:
    jobs = []
    for seed in args.seeds:
        for kind, recipe in (("sb3", "sb3"), ("ours", "classic"), ("ours", "crossq")):
            job: dict[str, object] = dict(
                kind=kind,
                env_id=args.env,
                seed=seed,
                steps=args.steps,
                learning_starts=args.learning_starts,
                eval_every=args.eval_every,
                eval_episodes=args.eval_episodes,
                threads=1,
                out_csv=RUNS_LOG / f"{recipe}-{args.env}-s{seed}.csv",
            )
            if kind == "ours":
                job.update(recipe=recipe, overlap=False)
            jobs.append(job)
    with ThreadPoolExecutor(args.jobs) as pool:
        for job, res in zip(jobs, pool.map(spawn, jobs)):
            print(job["out_csv"], res, flush=True)


# ----------------------------------------------------------------------------- report


def _read(path: Path) -> list[dict[str, float]]:
    lines = path.read_text().splitlines()[1:]
    return [dict(zip(("step", "wall_s", "mean_return", "std_return"), map(float, ln.split(",")))) for ln in lines]


def _mean_curve(paths: list[Path]) -> list[dict[str, float]]:
    curves = [_read(p) for p in paths]
    n = min(len(c) for c in curves)
    out = []
    for i in range(n):
        pts = [c[i] for c in curves]
        rets = [p["mean_return"] for p in pts]
        out.append(
            {
                "step": pts[0]["step"],
                "wall_s": sum(p["wall_s"] for p in pts) / len(pts),
                "mean_return": sum(rets) / len(rets),
                "min_return": min(rets),
                "max_return": max(rets),
            }
        )
    return out


def _step_to(curve: list[dict[str, float]], threshold: float) -> int | None:
    for p in curve:
        if p["mean_return"] >= threshold:
            return int(p["step"])
    return None


def _time_to(curve: list[dict[str, float]], threshold: float) -> float | None:
    for p in curve:
        if p["mean_return"] >= threshold:
            return p["wall_s"]
    return None


def report(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary: dict[str, object] = {"machine": "2-core x86_64 CPU, no GPU (robot_rl dev machine)"}
    md = ["# SAC: robot_rl vs Stable-Baselines3", ""]
    out_dir = Path(getattr(args, "out_dir", RESULTS))  # the raw runs are always read from RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    tp_file = RESULTS / "sac_vs_sb3_throughput_raw.json"
    if tp_file.exists():
        tp = json.loads(tp_file.read_text())
        md += [
            "## Throughput (env steps/s during the update phase, UTD 1)",
            "",
            f"Command: `{tp['command']}` — {tp['window_update_steps']} update steps after "
            f"{tp['learning_starts']} random steps, seed 0, each run in its own process.",
            "",
            "| env | torch threads | SB3 | robot_rl (classic) | ratio | robot_rl (CrossQ) |",
            "|---|---|---|---|---|---|",
        ]
        per_env: dict[str, dict[str, float]] = {}
        for env_id in sorted({r["env"] for r in tp["runs"]}):
            best = {"sb3": 0.0, "robot_rl": 0.0}
            crossq_best = 0.0
            for th in (1, 2):
                v = {r["impl"]: r["steps_per_s"] for r in tp["runs"] if r["env"] == env_id and r["torch_threads"] == th}
                if "sb3" in v and "robot_rl" in v:
                    cq = v.get("robot_rl_crossq")
                    md.append(
                        f"| {env_id} | {th} | {v['sb3']:.1f} | {v['robot_rl']:.1f} | {v['robot_rl'] / v['sb3']:.2f}x | "
                        + (f"{cq:.1f} |" if cq else "– |")
                    )
                    for k in best:
                        best[k] = max(best[k], v[k])
                    crossq_best = max(crossq_best, cq or 0.0)
            per_env[env_id] = {
                "sb3_steps_per_s": best["sb3"],
                "ours_steps_per_s": best["robot_rl"],
                "ours_crossq_steps_per_s": crossq_best,
                "ratio": best["robot_rl"] / best["sb3"] if best["sb3"] else float("nan"),
            }
        ratios = [v["ratio"] for v in per_env.values()]
        summary["throughput_by_threads"] = {
            env_id: {
                str(th): {
                    r["impl"]: r["steps_per_s"] for r in tp["runs"] if r["env"] == env_id and r["torch_threads"] == th
                }
                for th in sorted({r["torch_threads"] for r in tp["runs"] if r["env"] == env_id})
            }
            for env_id in per_env
        }
        summary["throughput"] = per_env
        summary["throughput_ratio"] = min(ratios) if ratios else None
        summary["target_throughput_ratio"] = TARGET_THROUGHPUT_RATIO
        summary["throughput_target_met"] = bool(ratios) and min(ratios) >= TARGET_THROUGHPUT_RATIO
        md += [
            "",
            "Headline ratio = each implementation at its best thread count on the whole machine "
            f"(min over envs): **{summary['throughput_ratio']:.2f}x** (target {TARGET_THROUGHPUT_RATIO:g}x).",
            "",
        ]
    logs = sorted(RUNS_LOG.glob("*.csv"))
    if logs:
        groups: dict[str, list[Path]] = {}
        for p in logs:
            groups.setdefault(p.name.split("-")[0], []).append(p)
        curves = {k: _mean_curve(v) for k, v in groups.items()}
        seeds = {k: len(v) for k, v in groups.items()}
        final = {k: c[-1] for k, c in curves.items()}
        # Per seed: the last evaluation and the run's average rate (steps / training wall-clock, eval excluded).
        summary["returns_runs"] = {
            p.stem: {
                "final_step": int(rows[-1]["step"]),
                "final_return": round(rows[-1]["mean_return"], 1),
                "steps_per_s": round(rows[-1]["step"] / rows[-1]["wall_s"], 1),
            }
            for p in logs
            for rows in [_read(p)]
            if rows
        }
        summary["returns"] = {
            "Hopper-v5": {
                k: {
                    "final_step": f["step"],
                    "mean_return": round(f["mean_return"], 1),
                    "min_return": round(f["min_return"], 1),
                    "max_return": round(f["max_return"], 1),
                    "seeds": seeds[k],
                    "train_wall_s": round(f["wall_s"], 1),
                }
                for k, f in final.items()
            }
        }
        md += [
            "## Returns on Hopper-v5 at equal env steps",
            "",
            "Command: `python bench/sac_vs_sb3.py returns` (1 torch thread per run, 2 runs in parallel), "
            "deterministic evaluation every few thousand steps (same seeded episodes for all).",
            "",
            "| implementation | seeds | steps | mean return (min–max over seeds) | training wall-clock [s] |",
            "|---|---|---|---|---|",
        ]
        for k, f in final.items():
            md.append(
                f"| {k} | {seeds[k]} | {int(f['step'])} | {f['mean_return']:.0f} ({f['min_return']:.0f}–"
                f"{f['max_return']:.0f}) | {f['wall_s']:.0f} |"
            )
        if "sb3" in curves:
            threshold = final["sb3"]["mean_return"]
            t_sb3 = _time_to(curves["sb3"], threshold)
            speed = {}
            for k in curves:
                if k == "sb3":
                    continue
                t = _time_to(curves[k], threshold)
                speed[k] = (t_sb3 / t) if (t and t_sb3) else None
            summary["sb3_final_return"] = threshold
            summary["wallclock_speedup_raw_by_recipe"] = speed
            # The returns runs share the machine (2 in parallel, other work around them), so their raw
            # wall-clock is noisy. Also derive it from steps-to-threshold x the quiet-machine step rate.
            tp_env = (
                summary.get("throughput", {}).get(args.env) if isinstance(summary.get("throughput"), dict) else None
            )
            derived: dict[str, float | None] = {}
            s_sb3 = _step_to(curves["sb3"], threshold)
            if tp_env and s_sb3:
                rate = {"classic": tp_env["ours_steps_per_s"], "crossq": tp_env.get("ours_crossq_steps_per_s")}
                for k in speed:
                    s_k = _step_to(curves[k], threshold)
                    derived[k] = (
                        (s_sb3 / tp_env["sb3_steps_per_s"]) / (s_k / rate[k]) if (s_k and rate.get(k)) else None
                    )
            summary["wallclock_speedup_derived_by_recipe"] = derived
            # Headline: the conservative derived figure when the quiet-machine rates exist (the raw one
            # rewards whichever run happened to share the machine less), else the raw one.
            summary["wallclock_speedup_to_sb3_return"] = derived.get("crossq") if derived else speed.get("crossq")
            summary["steps_to_sb3_return"] = {k: _step_to(c, threshold) for k, c in curves.items()}
            summary["target_wallclock_speedup"] = TARGET_WALLCLOCK_SPEEDUP
            headline = summary["wallclock_speedup_to_sb3_return"]
            summary["wallclock_target_met"] = isinstance(headline, float) and headline >= TARGET_WALLCLOCK_SPEEDUP
            md += [
                "",
                f"Steps to reach SB3's final mean return ({threshold:.0f}): "
                + ", ".join(f"{k}: {v if v else 'not reached'}" for k, v in summary["steps_to_sb3_return"].items())
                + ".",
                "",
                "Derived wall-clock speedup (steps-to-threshold x each one's best quiet-machine step rate from the "
                "throughput table): "
                + ", ".join(f"{k}: {f'{v:.2f}x' if v else 'not reached'}" for k, v in derived.items()),
                "",
                f"Raw wall-clock to reach SB3's final mean return ({threshold:.0f}), seed-mean curves: "
                + ", ".join(f"{k}: {f'{v:.2f}x' if v else 'not reached'}" for k, v in speed.items())
                + f" faster than SB3 (target {TARGET_WALLCLOCK_SPEEDUP:g}x for the sample-efficient recipe).",
                "",
            ]
        for x, fname in (("step", "sac_vs_sb3_steps.png"), ("wall_s", "sac_vs_sb3_wallclock.png")):
            fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
            for k, c in curves.items():
                xs = [p[x] for p in c]
                ax.plot(xs, [p["mean_return"] for p in c], marker="o", ms=3, label=k)
                ax.fill_between(xs, [p["min_return"] for p in c], [p["max_return"] for p in c], alpha=0.2)
            ax.set_xlabel("env steps" if x == "step" else "training wall-clock [s] (1 thread)")
            ax.set_ylabel("eval return (mean, min-max over seeds)")
            ax.set_title("Hopper-v5: SB3 SAC vs robot_rl SAC (classic, CrossQ)")
            ax.grid(alpha=0.3)
            ax.legend()
            fig.tight_layout()
            fig.savefig(out_dir / fname)
            plt.close(fig)
        md += ["![returns vs steps](sac_vs_sb3_steps.png) ![returns vs wall-clock](sac_vs_sb3_wallclock.png)", ""]
    md += ["## What limits these numbers (read before quoting them)", "", *limits(summary), ""]
    (out_dir / "sac_vs_sb3.md").write_text("\n".join(md) + "\n")
    (out_dir / "sac_vs_sb3.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(md))


def _pct(x: float) -> str:
    return f"{100 * x:+.0f}%"


def limits(summary: dict[str, Any]) -> list[str]:
    """The reading of the tables above, every figure computed from `summary` (nothing typed in)."""
    out: list[str] = []
    by_threads = summary.get("throughput_by_threads") or {}
    if by_threads:
        one = {e: t["1"]["robot_rl"] / t["1"]["sb3"] for e, t in by_threads.items() if "1" in t}
        gain_ours = {
            e: t["2"]["robot_rl"] / t["1"]["robot_rl"] - 1 for e, t in by_threads.items() if {"1", "2"} <= set(t)
        }
        gain_sb3 = {e: t["2"]["sb3"] / t["1"]["sb3"] - 1 for e, t in by_threads.items() if {"1", "2"} <= set(t)}
        met = summary["throughput_target_met"]
        out.append(
            f"* **Throughput target ({TARGET_THROUGHPUT_RATIO:g}x SB3) is {'met' if met else 'missed'}.** On one "
            "thread ours runs "
            + ", ".join(f"{r:.2f}x SB3 on {e}" for e, r in one.items())
            + " (less Python around the same matmuls: batched twin critics, fused Adam, no critic weight-grads in the "
            "actor step, foreach polyak). The second thread gives ours "
            + ", ".join(f"{_pct(g)} on {e}" for e, g in gain_ours.items())
            + " (2 intra-op threads with a short OpenMP spin, `GOMP_SPINCOUNT=2000`) and SB3 "
            + ", ".join(f"{_pct(g)} on {e}" for e, g in gain_sb3.items())
            + f", so the ratio at each one's best setting is {summary['throughput_ratio']:.2f}x (min over envs). "
            "`--overlap-env` (env stepping overlapped with the update, bit-identical results) is not in this table."
        )
    runs = summary.get("returns_runs") or {}
    returns = (summary.get("returns") or {}).get("Hopper-v5") or {}
    if runs and "sb3" in returns:
        seeds = sorted({name.rsplit("-s", 1)[1] for name in runs})

        def final(recipe: str, seed: str) -> float | None:
            run = next((v for k, v in runs.items() if k.startswith(recipe + "-") and k.endswith(f"-s{seed}")), None)
            return run["final_return"] if run else None

        above = []
        for recipe in (k for k in returns if k != "sb3"):
            pairs = [(final(recipe, sd), final("sb3", sd)) for sd in seeds]
            wins = sum(1 for a, b in pairs if a is not None and b is not None and a > b)
            above.append(f"{recipe} is above SB3 on {wins} of {len(pairs)} seeds")
        worse = [k for k, v in returns.items() if k != "sb3" and v["mean_return"] < returns["sb3"]["mean_return"]]
        sb3 = returns["sb3"]
        out.append(
            f"* **Returns** at equal steps ({int(sb3['final_step'])}): "
            + ("not worse than SB3's on the seed mean" if not worse else f"worse than SB3's for {', '.join(worse)}")
            + "; paired by seed, "
            + ", ".join(above)
            + f". SB3 trained for {sb3['train_wall_s'] / 60:.0f} min per seed here (1 thread, 2 runs in parallel)."
        )
    steps_to = summary.get("steps_to_sb3_return") or {}
    derived = summary.get("wallclock_speedup_derived_by_recipe") or {}
    raw = summary.get("wallclock_speedup_raw_by_recipe") or {}
    tp_hopper = (summary.get("throughput") or {}).get("Hopper-v5")
    if steps_to.get("crossq") and steps_to.get("sb3") and derived.get("crossq") and tp_hopper:
        fewer = 1 - steps_to["crossq"] / steps_to["sb3"]
        dearer = tp_hopper["ours_steps_per_s"] / tp_hopper["ours_crossq_steps_per_s"] - 1
        rates = sorted((v["steps_per_s"], k) for k, v in runs.items())
        met = summary["wallclock_target_met"]
        out.append(
            f"* **Wall-clock to SB3's final return** (target {TARGET_WALLCLOCK_SPEEDUP:g}x for the sample-efficient "
            f"recipe, judged on the conservative derived figure: {'met' if met else 'missed'}): CrossQ needs "
            f"{100 * fewer:.0f}% fewer steps than SB3 ({steps_to['crossq']} vs {steps_to['sb3']}) but each costs "
            f"{100 * dearer:.0f}% more than a classic step on Hopper-v5 (the joint current/next critic batch), so the "
            f"derived figure is {derived['crossq']:.2f}x. The raw figure ({raw.get('crossq') or 0:.2f}x) comes from "
            f"the returns runs, which shared the machine unevenly: their average rates ranged from {rates[0][0]:.0f} "
            f"steps/s ({rates[0][1]}) to {rates[-1][0]:.0f} steps/s ({rates[-1][1]}), so it is not a like-for-like "
            "comparison."
        )
    if returns:
        n_seeds = min(v["seeds"] for v in returns.values())
        steps = int(min(v["final_step"] for v in returns.values()))
        out.append(f"* {n_seeds} seeds, {steps} steps: a quick check, not a headline (a headline needs ≥ 5 seeds).")
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_single":
        _single(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--envs", nargs="+", default=["Hopper-v5", "HalfCheetah-v5"])
    t.add_argument("--window", type=int, default=3000, help="update steps measured per run")
    t.add_argument("--learning-starts", type=int, default=1000)
    r = sub.add_parser("returns")
    r.add_argument("--env", default="Hopper-v5")
    r.add_argument("--steps", type=int, default=50_000)
    r.add_argument("--learning-starts", type=int, default=10_000)
    r.add_argument("--eval-every", type=int, default=5_000)
    r.add_argument("--eval-episodes", type=int, default=5)
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--jobs", type=int, default=2, help="runs in parallel (each uses 1 torch thread)")
    rep = sub.add_parser("report")
    rep.add_argument("--env", default="Hopper-v5")
    rep.add_argument("--out-dir", type=Path, default=RESULTS, help="where the tables, JSON and plots go")
    args = p.parse_args()
    {"throughput": throughput, "returns": returns, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
