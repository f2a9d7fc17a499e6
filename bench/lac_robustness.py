"""LAC vs SAC under the robustness protocol of Han et al. 2020: the same perturbations, levels and seeded episodes.

For every (algorithm, training seed): train on the task, export the bundle, and run `robot-rl eval --robustness`'s
protocol (`robot_rl.train.robustness`) on it: model perturbations (mass, pole length), pushes of growing size at a
fixed time, persistent observation noise and action latency, each level on the same seeded evaluation episodes.
Reported per level, over training seeds: failure ("death") rate, success rate and episode cost.

Targets (issue 14): at the largest level of a kind where SAC's mean failure rate exceeds 50%, LAC's is at least 2×
lower; LAC's cost at nominal parameters within 20% of SAC's (at most 1.2× it). If LAC does not win, the tables and
the plot say so.

Results are written after every run; `--resume` skips finished (algo, seed) runs; shards run side by side with
separate `--out-dir`s and are combined with `--merge`.

Usage: .venv/bin/python bench/lac_robustness.py [--env robot_rl/CartPoleBalance-v0] [--algos lac sac] [--seeds 5]
           [--steps 20000] [--episodes 20] [--backend mujoco] [--out-dir docs/benchmarks] [--work-dir DIR] [--resume]
       .venv/bin/python bench/lac_robustness.py --merge A/lac_robustness.json B/lac_robustness.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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

from bench.bench_common import cpu_model, render_or_merge  # noqa: E402
from robot_rl.algos.registry import get_algorithm  # noqa: E402
from robot_rl.algos.sac.config import SACConfig  # noqa: E402
from robot_rl.cli import export_run  # noqa: E402
from robot_rl.export.runtime import OnnxPolicy  # noqa: E402
from robot_rl.train.config import TrainConfig  # noqa: E402
from robot_rl.train.loop import train  # noqa: E402
from robot_rl.train.robustness import RobustnessConfig, parse_perturbation, run_robustness  # noqa: E402

NAME = "lac_robustness"
DEFAULT_ENV = "robot_rl/CartPoleBalance-v0"


def report_name(env: str) -> str:
    """Output file stem: `lac_robustness` for the cart-pole, `lac_robustness_<task>` for another task (e.g.
    `lac_robustness_pandareach` for robot_rl/PandaReach-v0), so each task's report stands beside the others."""
    if env == DEFAULT_ENV:
        return NAME
    task = env.split("/")[-1].split("-v")[0].lower()
    return f"{NAME}_{task}"


KINDS = ("mass", "pole_length", "impulse", "obs_noise", "latency")
"""Kinds run on the cart-pole (its URDF has no joint damping and nothing slides: see docs/sim.md)."""
FAIL_BOUND = 0.5
"""SAC's failure rate above which a level is judged (the issue's "largest perturbation where SAC fails > 50%")."""
FAIL_RATIO = 2.0
"""LAC's failure rate must be at least this many times lower there."""
COST_RATIO = 1.2
"""LAC's nominal cost at most this × SAC's."""


def algo_config(algo: str, args: argparse.Namespace) -> Any:
    """The learner's config: SAC is the CrossQ preset (the project's strongest SAC); LAC its defaults, with the
    finite-horizon candidate when `--lac-horizon` > 0."""
    if algo == "sac":
        return SACConfig.preset("crossq")
    cfg = get_algorithm(algo).default_config()
    if algo == "lac" and args.lac_horizon:
        cfg = dataclasses.replace(cfg, horizon=args.lac_horizon)
    return cfg


def run_one(algo: str, seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train, export, and run the protocol; the JSON-ready record."""
    cfg = TrainConfig(
        env=args.env, backend=args.backend, seed=seed, total_steps=args.steps, learning_starts=1_000,
        eval_every=0, eval_episodes=1, checkpoint_every=0, out_dir=work / "runs", run_name=f"{algo}-s{seed}",
        progress=False, tensorboard=False,
    )  # fmt: skip
    learner_cfg = algo_config(algo, args)
    shutil.rmtree(cfg.out_dir / cfg.run_name, ignore_errors=True)  # left by an attempt stopped before its record
    t0 = time.perf_counter()
    result = train(cfg, algo, learner_cfg)
    train_wall = time.perf_counter() - t0
    bundle = work / "bundles" / f"{algo}-s{seed}"
    export_run(result.run_dir, bundle, overwrite=True)
    policy = OnnxPolicy.load(bundle)
    kinds = tuple(parse_perturbation(k) if ":" in k else (k, ()) for k in args.kinds)
    config = RobustnessConfig(perturbations=kinds, episodes=args.episodes, seed=0)
    t0 = time.perf_counter()
    report = run_robustness(
        policy.act, args.env, config, backend=args.backend, spec=policy.spec,
        on_reset=lambda obs: policy.reset(obs), reseed=policy.reseed,
    )  # fmt: skip
    record = {
        "algo": algo,
        "seed": seed,
        "train_wall_s": round(train_wall, 1),
        "eval_wall_s": round(time.perf_counter() - t0, 1),
        "learner_config": dataclasses.asdict(learner_cfg),
        "rows": report.to_json()["rows"],
    }
    print(f"{algo} seed {seed}: trained {train_wall:.0f} s; " + _nominal_line(record), flush=True)
    return record


def _nominal_line(record: dict[str, Any]) -> str:
    nominal = [r for r in record["rows"] if r["kind"] == record["rows"][0]["kind"] and r["level"] == 1.0]
    if not nominal:
        return ""
    r = nominal[0]
    return f"nominal failure {r['failure_rate']:.2f}, cost {r['mean_cost']}"


def _nominal_rows(runs: Sequence[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Each run's nominal row: the unperturbed level of the first kind (every kind runs it on the same seeds)."""
    out = {}
    for r in runs:
        for row in r["rows"]:
            if _is_nominal(row):
                out[(r["algo"], r["seed"])] = row
                break
    return out


def _is_nominal(row: dict[str, Any]) -> bool:
    # Factors are nominal at 1, additive perturbations (push, noise, latency) at 0.
    return bool(row["level"] == (1.0 if str(row["unit"]).startswith("x") else 0.0))


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per algo, kind and level: mean (min, max) over seeds of failure rate, success rate and cost."""
    out: dict[str, Any] = {}
    for run in runs:
        for row in run["rows"]:
            cell = out.setdefault(run["algo"], {}).setdefault(row["kind"], {}).setdefault(
                f"{row['level']:g}", {"unit": row["unit"], "failure": [], "success": [], "cost": []}
            )  # fmt: skip
            cell["failure"].append(row["failure_rate"])
            cell["success"].append(row["success_rate"])
            if row["mean_cost"] is not None:
                cell["cost"].append(row["mean_cost"])
    for by_kind in out.values():
        for levels in by_kind.values():
            for cell in levels.values():
                for key in ("failure", "success", "cost"):
                    v = cell[key]
                    cell[key] = (
                        {"mean": round(float(np.mean(v)), 4), "min": min(v), "max": max(v), "n": len(v)} if v else None
                    )
    return out


def judge(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, per kind and for the nominal cost, from the summary (LAC vs SAC)."""
    lac, sac = summary.get("lac"), summary.get("sac")
    if not lac or not sac:
        return []
    verdicts = []
    for kind, levels in sac.items():
        failing = [lv for lv, c in levels.items() if c["failure"]["mean"] > FAIL_BOUND]
        if not failing:
            verdicts.append({"kind": kind, "level": None, "sac_failure": None, "lac_failure": None, "met": None})
            continue
        level = max(failing, key=float)
        sac_f = levels[level]["failure"]["mean"]
        lac_cell = lac.get(kind, {}).get(level)
        lac_f = lac_cell["failure"]["mean"] if lac_cell else None
        met = lac_f is not None and lac_f * FAIL_RATIO <= sac_f
        verdicts.append({"kind": kind, "level": float(level), "unit": levels[level]["unit"], "sac_failure": sac_f,
                         "lac_failure": lac_f, "met": met})  # fmt: skip
    kind0 = next(iter(sac))
    nominal = next((lv for lv, c in sac[kind0].items() if _is_nominal({"level": float(lv), "unit": c["unit"]})), None)
    if nominal is not None and sac[kind0][nominal]["cost"] and lac.get(kind0, {}).get(nominal, {}).get("cost"):
        s_cost, l_cost = sac[kind0][nominal]["cost"]["mean"], lac[kind0][nominal]["cost"]["mean"]
        verdicts.append({"kind": "nominal cost", "level": None, "sac_cost": s_cost, "lac_cost": l_cost,
                         "met": l_cost <= COST_RATIO * s_cost})  # fmt: skip
    return verdicts


def build_report(runs: list[dict[str, Any]], args_json: dict[str, Any], command: str) -> dict[str, Any]:
    summary = summarize(runs)
    return {
        "command": command,
        "config": args_json,
        "machine": {"cpu_model": cpu_model(), "python": platform.python_version()},
        "runs": runs,
        "summary": summary,
        "targets": judge(summary),
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def write_report(data: dict[str, Any], out_dir: Path, write_json: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / f"{report_name(data['config']['env'])}.json").write_text(json.dumps(data, indent=1) + "\n")
    cfg, summary = data["config"], data["summary"]
    seeds = {a: sorted({r["seed"] for r in data["runs"] if r["algo"] == a}) for a in summary}
    lines = [
        "# LAC vs SAC: robustness of the trained policies (the protocol of Han et al. 2020)",
        "",
        "```",
        *data["command"].splitlines(),
        "```",
        "",
        f"Task `{cfg['env']}` in {cfg['backend'] or 'its default engine'}; each algorithm trained for "
        f"{cfg['steps']:,} env steps per seed (seeds: "
        + ", ".join(f"{a} {len(s)}" for a, s in seeds.items())
        + f"), exported, and evaluated on {cfg['episodes']} seeded episodes per level (the same episodes for every "
        "level, seed and algorithm). SAC is the CrossQ preset; LAC its defaults"
        + (f" with the finite-horizon candidate N = {cfg['lac_horizon']}" if cfg.get("lac_horizon") else "")
        + f". Machine: {data['machine']['cpu_model']}.",
        "",
        "Failure = the episode ended in a terminal failure (the task's own: on the cart-pole the pole fell or the "
        "cart left the track; a reach task has none) or diverged; success = the task's success at the episode's end; "
        "cost = the episode's summed `info[\"cost\"]` (a failed episode's cost covers only the steps before it "
        "failed: read it next to the failure rate). Mean over training seeds, min–max in brackets.",
        "",
    ]
    for kind in next(iter(summary.values()), {}):
        header = " | ".join(f"{a} failure | {a} success | {a} cost" for a in summary)
        lines += [f"## {kind}", "", f"| level | {header} |"]
        lines.append("|---|" + "---|---|---|" * len(summary))
        levels = sorted({lv for a in summary for lv in summary[a].get(kind, {})}, key=float)
        for lv in levels:
            cells = []
            for a in summary:
                c = summary[a].get(kind, {}).get(lv)
                if c is None:
                    cells += ["–", "–", "–"]
                    continue
                f = c["failure"]
                spread = f" ({_pct(f['min'])}–{_pct(f['max'])})" if f["n"] > 1 else ""
                cost = f"{c['cost']['mean']:.1f}" if c["cost"] else "–"
                success = _pct(c["success"]["mean"]) if c["success"] else "–"
                cells += [f"{_pct(f['mean'])}{spread}", success, cost]
            unit = next(summary[a][kind][lv]["unit"] for a in summary if lv in summary[a].get(kind, {}))
            lines.append(f"| {lv} {unit} | " + " | ".join(cells) + " |")
        lines.append("")
    if _headline_metric(summary) == "success":
        lines += ["## Reading", "", *_success_reading(summary), ""]
    lines += ["## Targets (issue 14)", ""]
    if not data["targets"]:
        lines.append("Not judged: both `lac` and `sac` runs are needed.")
    for t in data["targets"]:
        if t["kind"] == "nominal cost":
            lines.append(
                f"* Nominal cost: LAC {t['lac_cost']:.1f} vs SAC {t['sac_cost']:.1f} "
                f"({t['lac_cost'] / t['sac_cost']:.2f}×; bound {COST_RATIO}×): {'met' if t['met'] else '**missed**'}."
            )
        elif t["level"] is None:
            lines.append(f"* {t['kind']}: SAC never fails more than {FAIL_BOUND:.0%} at these levels: not judged.")
        else:
            lines.append(
                f"* {t['kind']}: the largest level where SAC fails more than {FAIL_BOUND:.0%} is {t['level']:g} "
                f"{t['unit']} (SAC {_pct(t['sac_failure'])}); LAC fails {_pct(t['lac_failure'])} there "
                f"(needs ≤ {_pct(t['sac_failure'] / FAIL_RATIO)}): {'met' if t['met'] else '**missed**'}."
            )
    few = [a for a, s in seeds.items() if len(s) < 5]
    if few:
        lines += ["", f"Fewer than 5 training seeds for {', '.join(few)}: a first look, not a headline."]
    plot = _plot(data, out_dir)
    if plot:
        lines += ["", f"![{_headline_metric(summary)} rate per level]({plot.name})"]
    (out_dir / f"{report_name(cfg['env'])}.md").write_text("\n".join(lines) + "\n")


def _headline_metric(summary: dict[str, Any]) -> str:
    """`failure` where any run failed at any level (the cart-pole), else `success` (a reach task never fails)."""
    for by_kind in summary.values():
        for levels in by_kind.values():
            if any(c["failure"] and c["failure"]["max"] > 0 for c in levels.values()):
                return "failure"
    return "success"


def _success_reading(summary: dict[str, Any]) -> list[str]:
    """Per kind: each algorithm's mean success at the nominal level and at the largest level."""
    out = []
    for kind in next(iter(summary.values()), {}):
        parts = []
        for algo, by_kind in summary.items():
            levels = by_kind.get(kind, {})
            if not levels:
                continue
            nominal = next(
                (lv for lv, c in levels.items() if _is_nominal({"level": float(lv), "unit": c["unit"]})), None
            )
            top = max(levels, key=float)
            if nominal is None or not levels[nominal]["success"] or not levels[top]["success"]:
                continue
            parts.append(f"{algo} {_pct(levels[nominal]['success']['mean'])} → {_pct(levels[top]['success']['mean'])}")
        if parts:
            unit = next(iter(summary.values()))[kind][max(next(iter(summary.values()))[kind], key=float)]["unit"]
            top_level = max(next(iter(summary.values()))[kind], key=float)
            out.append(f"* {kind}: success from nominal to {top_level} {unit}: " + "; ".join(parts) + ".")
    return out


def _plot(data: dict[str, Any], out_dir: Path) -> Path | None:
    """Failure rate vs level per kind, one line per algorithm (mean over seeds, min–max band)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    summary = data["summary"]
    kinds = list(next(iter(summary.values()), {}))
    if not kinds:
        return None
    metric = _headline_metric(summary)
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.0), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        for algo, by_kind in summary.items():
            levels = sorted(by_kind.get(kind, {}), key=float)
            if not levels:
                continue
            x = [float(lv) for lv in levels]
            f = [by_kind[kind][lv][metric] for lv in levels]
            ax.plot(x, [c["mean"] for c in f], marker="o", label=algo)
            ax.fill_between(x, [c["min"] for c in f], [c["max"] for c in f], alpha=0.2)
        unit = next(iter(summary.values()))[kind][sorted(next(iter(summary.values()))[kind], key=float)[0]]["unit"]
        ax.set_title(kind)
        ax.set_xlabel(unit)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric} rate")
    axes[0][0].legend()
    fig.tight_layout()
    path = out_dir / f"{report_name(data['config']['env'])}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def merge(paths: Sequence[Path]) -> dict[str, Any]:
    """Combine shards (same env, steps, episodes, engine); a (algo, seed) in two shards is refused."""
    parts = [json.loads(p.read_text()) for p in paths]
    keys = ("env", "steps", "episodes", "backend", "kinds", "lac_horizon")
    for p, d in zip(paths[1:], parts[1:], strict=True):
        if any(d["config"].get(k) != parts[0]["config"].get(k) for k in keys):
            raise SystemExit(f"{p}: its config differs from {paths[0]} in one of {keys}")
    runs, seen = [], set()
    for p, d in zip(paths, parts, strict=True):
        for r in d["runs"]:
            if (r["algo"], r["seed"]) in seen:
                raise SystemExit(f"{p}: {r['algo']} seed {r['seed']} is in another shard too")
            seen.add((r["algo"], r["seed"]))
            runs.append(r)
    command = (
        "\n".join(d["command"] for d in parts)
        + "\n"
        + "python bench/lac_robustness.py --merge "
        + " ".join(map(str, paths))
    )
    return build_report(runs, parts[0]["config"], command)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default=DEFAULT_ENV, help="task (its report: lac_robustness[_<task>].{json,md,png})")
    ap.add_argument("--algos", nargs="+", default=["lac", "sac"], choices=["lac", "sac"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="training seeds")
    ap.add_argument("--steps", type=int, default=20_000, help="env steps per training run")
    ap.add_argument("--episodes", type=int, default=20, help="seeded evaluation episodes per level")
    ap.add_argument("--backend", default="mujoco", choices=["mujoco", "pybullet"])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), help="KIND (default levels) or KIND:L1,L2,...")
    ap.add_argument("--lac-horizon", type=int, default=0, help="LAC's finite-horizon candidate N (0 = infinite)")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--work-dir", type=Path, help="runs and bundles (default: a temp dir)")
    ap.add_argument("--resume", action="store_true", help="keep the runs already in <out-dir>'s JSON")
    ap.add_argument("--merge", type=Path, nargs="+", help="combine these shard JSONs into <out-dir>")
    ap.add_argument("--from-json", type=Path, help="re-render the markdown from this JSON")
    args = ap.parse_args(argv)
    if render_or_merge(args.from_json, args.merge, args.out_dir, write_report, merge):
        return 0
    command = ".venv/bin/python bench/lac_robustness.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    args_json = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                 if k in ("env", "algos", "seeds", "steps", "episodes", "backend", "kinds", "lac_horizon")}  # fmt: skip
    runs: list[dict[str, Any]] = []
    previous = args.out_dir / f"{report_name(args.env)}.json"
    if args.resume and previous.exists():
        runs = list(json.loads(previous.read_text())["runs"])
    done = {(r["algo"], r["seed"]) for r in runs}
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="lac-robustness-"))
    for seed in args.seeds:  # seeds outer: a stopped run has both algorithms on its first seeds
        for algo in args.algos:
            if (algo, seed) in done:
                continue
            runs.append(run_one(algo, seed, args, work))
            write_report(build_report(runs, args_json, command), args.out_dir)
    write_report(build_report(runs, args_json, command), args.out_dir)
    print(f"wrote {args.out_dir / (report_name(args.env) + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
