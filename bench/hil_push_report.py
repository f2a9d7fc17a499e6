"""bench/hil_push.py's pure half: a run's records → the time-aligned curves, the summary over seeds, the issue's
targets, the Markdown report and the plot, and the merge of shards (no ROS, no training; tested on synthetic
records in tests/bench/test_hil_push.py).

Time is wall-clock minutes since the run's policy node became active. A run's success without the operator at
time t is the offline success of the bundle it was running at t: the base until the first swap, then each swapped-in
(or rolled-back-to) bundle from the first episode that ran it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_common import bootstrap_ci, iqm, merge_shards

ENV_ID = "robot_rl/PandaPush-v0"
CONDITIONS = ("operator", "rl_only")
"""`operator`: the scripted operator takes over when the robot drifts from the expert; `rl_only`: nobody does."""
SUCCESS_TARGET = 0.80
"""The issue's target: success without the operator reaches >= 80% within the budget."""
BUDGET_MIN = 30.0
"""The issue's wall-clock budget, minutes."""
BASE_BAND = (0.20, 0.40)
"""The issue's weak base: 20–40% success without help."""
EARLY_LATE_FRACTION = 0.25
"""Interventions "early" and "late": episodes that started in the first and in the last quarter of the run."""
GRID_POINTS = 61
"""Points of the common time grid the seeds' curves are aligned on (0 to the run's length)."""


def step_function(events: Sequence[tuple[float, float]], initial: float, grid: Sequence[float]) -> list[float]:
    """The value at each grid time of a piecewise-constant signal that starts at `initial` and takes each event's
    value from its time on (events in any order; at equal times the later one in the list wins)."""
    order = sorted(range(len(events)), key=lambda i: (events[i][0], i))
    times = [events[i][0] for i in order]
    values = [events[i][1] for i in order]
    out = []
    for g in grid:
        k = int(np.searchsorted(times, g, side="right"))
        out.append(values[k - 1] if k else initial)
    return out


def binned_mean(times: Sequence[float], values: Sequence[float], edges: Sequence[float]) -> list[float | None]:
    """Mean of `values` whose time falls in each [edges[i], edges[i+1]) (the last bin closed); None when empty."""
    t, v = np.asarray(times, dtype=float), np.asarray(values, dtype=float)
    out: list[float | None] = []
    for i in range(len(edges) - 1):
        last = i == len(edges) - 2
        mask = (t >= edges[i]) & ((t <= edges[i + 1]) if last else (t < edges[i + 1]))
        out.append(round(float(v[mask].mean()), 4) if mask.any() else None)
    return out


def early_late(times_min: Sequence[float], values: Sequence[float], minutes: float) -> tuple[float | None, ...]:
    """Mean of `values` over the episodes that started in the first and in the last `EARLY_LATE_FRACTION` of the
    run (None where no episode did)."""
    w = EARLY_LATE_FRACTION * minutes
    early, late = binned_mean(times_min, values, [0.0, w]), binned_mean(times_min, values, [minutes - w, minutes])
    return early[0], late[0]


def success_events(run: dict[str, Any], base_success: float) -> list[tuple[float, float]]:
    """(minutes, success without help) of the bundle running on the robot from each swap or rollback on."""
    by_sha = {b["sha256"]: b["success"] for b in run["bundles"]}
    by_sha[run.get("base_sha256", "")] = base_success
    out = []
    for s in run["swaps"]:
        value = by_sha.get(s["sha256"])
        if value is not None:
            out.append((s["t_min"], float(value)))
    return out


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 3) if len(values) else None


# ------------------------------------------------------------------------------------------------- summary (pure)


def time_grid(minutes: float) -> list[float]:
    return [round(float(x), 4) for x in np.linspace(0.0, minutes, GRID_POINTS)]


def fixed_times(minutes: float) -> list[float]:
    """The times success is tabulated at: each quarter of the run."""
    return [round(minutes * q, 3) for q in (0.25, 0.5, 0.75, 1.0)]


def _ci(values: Sequence[float]) -> dict[str, Any]:
    lo, hi = bootstrap_ci(values)
    return {
        "iqm": round(iqm(values), 3),
        "ci95": [round(lo, 3), round(hi, 3)],
        "per_seed": [round(v, 3) for v in values],
    }


def run_curves(run: dict[str, Any], base_success: float, minutes: float) -> dict[str, Any]:
    """One run's curves on the common grid: success of the running bundle, takeovers per episode, swaps so far."""
    grid = time_grid(minutes)
    ev = success_events(run, base_success)
    edges = time_grid(minutes)[:: max(1, (GRID_POINTS - 1) // 15)]
    ep = run["episodes"]
    return {
        "grid": grid,
        "success": step_function(ev, base_success, grid),
        "bin_edges": edges,
        "takeovers": binned_mean(ep["t_min"], ep["takeovers"], edges),
        "human_share": binned_mean(ep["t_min"], human_share(run), edges),
        "live_success": binned_mean(ep["t_min"], ep["success"], edges),
    }


def base_live(run: dict[str, Any]) -> list[int]:
    """[successes, episodes] of the run's recorded episodes that the base ran (before the first swap, or after a
    rollback to it), with or without the operator's help."""
    ep = run["episodes"]
    base = str(run.get("base_sha256", ""))[:12]
    won = [s for s, sha in zip(ep["success"], ep["sha256"], strict=True) if sha == base]
    return [int(sum(won)), len(won)]


def human_share(run: dict[str, Any]) -> list[float]:
    """Per recorded episode: the share of its steps the operator drove."""
    ep = run["episodes"]
    return [h / max(n, 1) for h, n in zip(ep["human_steps"], ep["steps"], strict=True)]


def _iqm_bins(curves: Sequence[dict[str, Any]], key: str) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(curves[0]["bin_edges"]) - 1):
        vals = [c[key][i] for c in curves if c[key][i] is not None]
        out.append(round(iqm(vals), 3) if vals else None)
    return out


def _early_late_per_seed(runs: Sequence[dict[str, Any]], values: str, minutes: float) -> tuple[list, list]:
    early, late = [], []
    for r in runs:
        v = human_share(r) if values == "human_share" else r["episodes"][values]
        e, lt = early_late(r["episodes"]["t_min"], v, minutes)
        early.append(None if e is None else round(e, 3))
        late.append(None if lt is None else round(lt, 3))
    return early, late


def per_tick(counters: dict[str, int], ticks: int) -> dict[str, float]:
    """Safety-chain activations per control tick, the non-zero ones (`held`, `acceleration_limit` ...)."""
    return {k: round(v / ticks, 4) for k, v in sorted(counters.items()) if v and ticks}


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """Per condition: success without the operator at fixed times and at the end (IQM, 95% CI over seeds), the IQM
    curve, interventions early vs late, swaps, swap latency, steps lost, the learner, loop timing; the baseline."""
    minutes = float(data["minutes"])
    base_success = float(data["base"]["success"])
    out: dict[str, Any] = {"conditions": {}}
    for condition in CONDITIONS:
        runs = sorted((r for r in data["runs"] if r["condition"] == condition), key=lambda r: r["seed"])
        if not runs:
            continue
        curves = [run_curves(r, base_success, minutes) for r in runs]
        grid = curves[0]["grid"]
        iqm_curve = [round(iqm([c["success"][i] for c in curves]), 3) for i in range(len(grid))]
        at = {}
        for t in fixed_times(minutes):
            vals = [step_function(success_events(r, base_success), base_success, [t])[0] for r in runs]
            at[f"{t:g}"] = _ci(vals)
        reach = next((g for g, v in zip(grid, iqm_curve, strict=True) if v >= SUCCESS_TARGET), None)
        early, late = _early_late_per_seed(runs, "takeovers", minutes)
        share_early, share_late = _early_late_per_seed(runs, "human_share", minutes)
        lat = [x for r in runs for x in r["swap_latency_s"]]
        steps = [r["steps"] for r in runs if r["steps"]]
        entry: dict[str, Any] = {
            "seeds": [r["seed"] for r in runs],
            "final_success": _ci([c["success"][-1] for c in curves]),
            "success_at_min": at,
            "first_reach_min": reach,
            "iqm_curve": iqm_curve,
            "takeovers_iqm_bins": _iqm_bins(curves, "takeovers"),
            "human_share_iqm_bins": _iqm_bins(curves, "human_share"),
            "takeovers_early": early,
            "takeovers_late": late,
            "human_share_early": share_early,
            "human_share_late": share_late,
            "episodes": [len(r["episodes"]["t_min"]) for r in runs],
            "live_success": [_mean(r["episodes"]["success"]) for r in runs],
            "base_live": [base_live(r) for r in runs],
            "swaps": [sum(1 for s in r["swaps"] if s["kind"] == "swap") for r in runs],
            "rollbacks": [sum(1 for s in r["swaps"] if s["kind"] == "rollback") for r in runs],
            "bundles_exported": [len(r["bundles"]) for r in runs],
            "swap_latency_s": {
                "n": len(lat),
                "median": round(float(np.median(lat)), 3) if lat else None,
                "max": round(float(np.max(lat)), 3) if lat else None,
            },
            "node_last_verify_s": [r.get("node_last_verify_s") for r in runs],
            "steps_lost": [st.get("lost_total", 0) for st in steps],
            "steps_before_join": [st.get("learner_skipped_before_join", 0) for st in steps],
            "steps_offered": [st.get("offered", 0) for st in steps],
            "learner_updates": [r["learner"].get("updates", 0) for r in runs],
            "learner_updates_per_s": [r["learner"].get("updates_per_s", 0.0) for r in runs],
            "learner_pending": [r["learner"].get("pending_updates") for r in runs],
            "p99_ms": [r["loop"].get("p99_ms") for r in runs],
            "p50_ms": [r["loop"].get("p50_ms") for r in runs],
            "deadline_miss_rate": [r["loop"].get("deadline_miss_rate") for r in runs],
            "sim_speed": [r["sim_speed"]["factor"] for r in runs],
            "safety_per_tick": [per_tick(r.get("safety", {}), r["sim_speed"]["ticks"]) for r in runs],
        }
        if all(x is not None for x in early + late):
            entry["takeovers_change_iqm"] = round(iqm([lt - e for e, lt in zip(early, late, strict=True)]), 3)
        out["conditions"][condition] = entry
    base_loops = [b["loop"] for b in data.get("baselines", []) if b.get("loop")]
    out["baseline"] = {
        "runs": len(base_loops),
        "p99_ms": [b.get("p99_ms") for b in base_loops],
        "p50_ms": [b.get("p50_ms") for b in base_loops],
        "deadline_miss_rate": [b.get("deadline_miss_rate") for b in base_loops],
        "safety_per_tick": [
            per_tick(b.get("safety", {}), int(b["loop"].get("ticks", 0))) for b in data.get("baselines", [])
        ],
        "live": [[b.get("successes"), b.get("episodes")] for b in data.get("baselines", [])],
    }
    return out


def verdicts(data: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """The issue's targets, judged from the data: >= 80% without the operator within 30 minutes (on the IQM over
    seeds at the run's end), and interventions per episode falling (late vs early quarter, IQM over seeds)."""
    minutes = float(data["minutes"])
    lines = []
    lo, hi = BASE_BAND
    b = float(data["base"]["success"])
    lines.append(
        f"* Base: {b:.0%} success without help ({data['base']['eval_episodes']} episodes): "
        + ("inside" if lo <= b <= hi else "**outside**")
        + f" the issue's {lo:.0%}–{hi:.0%} band."
        + _base_over_ros(data, summary)
    )
    conds = summary["conditions"]
    for condition in CONDITIONS:
        s = conds.get(condition)
        if s is None:
            continue
        f = s["final_success"]
        judged = minutes >= BUDGET_MIN
        reached = f["iqm"] >= SUCCESS_TARGET and minutes <= BUDGET_MIN + 1e-9
        verdict = (
            ("**target met**" if reached else "**target missed**")
            if judged
            else f"not judged (runs of {minutes:g} min; the target is for {BUDGET_MIN:g})"
        )
        first = "never" if s["first_reach_min"] is None else f"first at {s['first_reach_min']:g} min"
        lines.append(
            f"* ≥ {SUCCESS_TARGET:.0%} without the operator within {BUDGET_MIN:g} min, `{condition}`: "
            f"{f['iqm']:.0%} [{f['ci95'][0]:.0%}, {f['ci95'][1]:.0%}] at {minutes:g} min over {len(s['seeds'])} "
            f"seed(s) (IQM ≥ {SUCCESS_TARGET:.0%}: {first}): {verdict}."
        )
    s = conds.get("operator")
    if s is not None:
        if "takeovers_change_iqm" not in s:
            lines.append("* Interventions fall: not judged (a seed had no episode in the first or last quarter).")
        elif not any(s["takeovers_early"]):
            lines.append("* Interventions fall: not judged: the operator never took over in the first quarter.")
        else:
            fell = s["takeovers_change_iqm"] < 0
            n_fell = sum(1 for e, lt in zip(s["takeovers_early"], s["takeovers_late"], strict=True) if lt < e)
            lines.append(
                f"* Interventions fall (takeovers per episode, last vs first quarter of the run): "
                f"{_fmt_list(s['takeovers_early'])} → {_fmt_list(s['takeovers_late'])} per seed, a change of "
                f"{s['takeovers_change_iqm']:+.2f} (IQM); fell in {n_fell} of {len(s['seeds'])} seed(s): "
                + ("**target met**." if fell else "**target missed**.")
                + f" Share of steps the operator drove: {_fmt_list(s['human_share_early'])} → "
                f"{_fmt_list(s['human_share_late'])}."
            )
    return lines


def _base_over_ros(data: dict[str, Any], summary: dict[str, Any]) -> str:
    """The base's own episodes on the robot over ROS: the baseline run's and, without the operator, the `rl_only`
    runs' episodes before their first swap."""
    won = n = 0
    for b in summary["baseline"]["live"]:
        if b[0] is not None and b[1]:
            won, n = won + int(b[0]), n + int(b[1])
    rl = summary["conditions"].get("rl_only")
    if rl is not None:
        won += sum(x[0] for x in rl["base_live"])
        n += sum(x[1] for x in rl["base_live"])
    if not n:
        return ""
    where = "Over ROS (the policy node behind its safety chain, no operator)"
    return f" {where} it won {won} of {n} episodes ({won / n:.0%})."


def _fmt_list(values: Sequence[Any], fmt: str = "{:.2f}") -> str:
    return "/".join("—" if v is None else fmt.format(v) for v in values)


def _fmt_ms(values: Sequence[Any]) -> str:
    return _fmt_list(values, "{:.2f}")


# ------------------------------------------------------------------------------------------------- report


def plot(data: dict[str, Any], path: Path) -> None:
    """Three panels against wall-clock minutes: success without the operator of the running bundle (seeds faint,
    IQM bold), the operator's takeovers per episode and share of steps, and the swaps (| swap, x rollback) per
    run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = float(data["minutes"])
    base_success = float(data["base"]["success"])
    colors = {"operator": "tab:blue", "rl_only": "tab:orange"}
    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.4]})
    summary = data["summary"]["conditions"]
    rows: list[str] = []
    for condition in CONDITIONS:
        runs = sorted((r for r in data["runs"] if r["condition"] == condition), key=lambda r: r["seed"])
        if not runs:
            continue
        c = colors[condition]
        for r in runs:
            cur = run_curves(r, base_success, minutes)
            axes[0].step(cur["grid"], cur["success"], where="post", color=c, alpha=0.25, lw=1)
            if condition == "operator":
                _binned_line(axes[1], cur["bin_edges"], cur["takeovers"], color=c, alpha=0.25, lw=1, marker=".")
                _binned_line(axes[1], cur["bin_edges"], cur["human_share"], color=c, alpha=0.25, lw=1, ls="--")
            y = len(rows)
            rows.append(f"{condition} s{r['seed']}")
            for kind, marker in (("swap", "|"), ("rollback", "x")):
                ts = [s["t_min"] for s in r["swaps"] if s["kind"] == kind]
                if ts:
                    axes[2].scatter(ts, [y] * len(ts), marker=marker, color=c, s=60 if kind == "swap" else 30)
        s = summary[condition]
        grid = time_grid(minutes)
        axes[0].step(grid, s["iqm_curve"], where="post", color=c, lw=2.5, label=f"{condition} (IQM, {len(runs)} seeds)")
        if condition == "operator":
            edges = run_curves(runs[0], base_success, minutes)["bin_edges"]
            _binned_line(axes[1], edges, s["takeovers_iqm_bins"], color=c, lw=2.5, marker="o", label="takeovers (IQM)")
            share = s["human_share_iqm_bins"]
            _binned_line(axes[1], edges, share, color=c, lw=2, ls="--", label="share of steps the operator drove (IQM)")
    axes[0].axhline(base_success, ls="--", lw=0.8, color="grey")
    axes[0].text(0, base_success, " base", va="bottom", fontsize=8, color="grey")
    axes[0].axhline(SUCCESS_TARGET, ls=":", lw=0.8, color="green")
    axes[0].set_ylim(-0.03, 1.03)
    axes[0].set_ylabel("success without operator\n(running bundle, offline eval)")
    axes[0].legend(fontsize=8, loc="upper left")
    axes[1].set_ylabel("operator, per episode")
    axes[1].set_ylim(bottom=0)
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(fontsize=8)
    axes[2].set_yticks(range(len(rows)), rows, fontsize=7)
    axes[2].set_ylim(-0.7, max(len(rows), 1) - 0.3)
    axes[2].set_ylabel("swaps (|), rollbacks (x)")
    axes[2].set_xlabel("wall-clock, minutes since the policy node became active")
    axes[2].set_xlim(0, minutes)
    fig.suptitle(f"{ENV_ID} over ROS 2: HIL (scripted operator) vs RL only, from a {base_success:.0%} BC base")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _binned_line(ax: Any, edges: Sequence[float], values: Sequence[float | None], **kw: Any) -> None:
    """A line through the bins' midpoints (empty bins left out)."""
    pts = [((a + b) / 2, v) for (a, b), v in zip(itertools.pairwise(edges), values, strict=True) if v is not None]
    if pts:
        ax.plot([x for x, _ in pts], [y for _, y in pts], **kw)


def write_report(data: dict[str, Any], out_dir: Path, write_json: bool = True) -> None:
    """`<out_dir>/<name>.{json,md,png}`, name = the JSON's `name` (`--name`; default `hil_push`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data["summary"] = summarize(data)
    stem = data.get("name") or "hil_push"
    if write_json:
        (out_dir / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    (out_dir / f"{stem}.md").write_text(render_markdown(data))
    if data["runs"]:
        plot(data, out_dir / f"{stem}.png")


def render_markdown(data: dict[str, Any]) -> str:
    summary = data["summary"]
    conds = summary["conditions"]
    base = data["base"]
    minutes = float(data["minutes"])
    lines = [
        "# Human-in-the-loop learning on PandaPush over ROS 2: scripted operator vs RL only",
        "",
        "```",
        data["command"],
        "```",
        "",
        f"{ENV_ID} through `robot-rl deploy launch/hil_train.launch.xml` (sim robot, policy node, learner "
        f"`{data['learner_params'].get('algo', '?')}`, recording; the scripted operator in `operator` runs). "
        f"Each run: {minutes:g} min of wall-clock from the policy node's activation. Base: BC on "
        f"{base['expert_episodes']} scripted-expert episodes, {base['updates']} updates, {base['success']:.0%} success "
        f"without help. Success without the operator = the bundle running on the robot at that time, evaluated "
        f"afterwards in sim on {data['eval_episodes']} seeded episodes (the same ones for every bundle). "
        f"Machine: {data['machine']}; load average at start {data.get('loadavg', '?')} (other jobs share the cores). "
        "How each figure is measured: the docstring of `bench/hil_push.py`.",
        "",
        *_load_lines(data),
        "Learner settings (launch/params/hil_sim.yaml with the bench's additions and `--param` overrides): "
        + ", ".join(f"`{k}={v}`" for k, v in sorted(data["learner_params"].items()) if k != "demos")
        + (f"; demonstrations: the {base['expert_episodes']} expert episodes." if data.get("demos") else "."),
        "",
    ]
    if not conds:
        lines += ["No finished run yet.", ""]
        return "\n".join(lines)
    times = fixed_times(minutes)
    lines += [
        "## Success without the operator",
        "",
        "| condition | seeds | "
        + " | ".join(f"{t:g} min" for t in times)
        + " | first ≥ 80% (IQM) | live success (episodes) |",
        "|---|---|" + "---|" * len(times) + "---|---|",
    ]
    for condition, s in conds.items():
        cells = [
            f"{s['success_at_min'][f'{t:g}']['iqm']:.2f} [{s['success_at_min'][f'{t:g}']['ci95'][0]:.2f}, "
            f"{s['success_at_min'][f'{t:g}']['ci95'][1]:.2f}]"
            for t in times
        ]
        first = "—" if s["first_reach_min"] is None else f"{s['first_reach_min']:g} min"
        live = _fmt_list(s["live_success"]) + f" ({'/'.join(str(n) for n in s['episodes'])})"
        lines.append(f"| `{condition}` | {len(s['seeds'])} | " + " | ".join(cells) + f" | {first} | {live} |")
    lines += [
        "",
        "IQM [95% bootstrap CI] over seeds; per seed: "
        + "; ".join(
            f"`{c}` " + _fmt_list(s["final_success"]["per_seed"]) + f" at {minutes:g} min" for c, s in conds.items()
        )
        + ". Live success: the share of the run's own episodes that succeeded (with the operator's help in "
        "`operator` runs).",
        "",
    ]
    if data["runs"]:
        lines += [f"![success, interventions and swaps vs wall-clock]({data.get('name') or 'hil_push'}.png)", ""]
    lines += ["## Targets (issue 15)", "", *verdicts(data, summary), ""]
    lines += [
        "## The loop",
        "",
        "| condition | takeovers/episode early → late | operator's share of steps early → late | swaps (rollbacks) "
        "| bundles exported | swap latency median / max, s | steps lost / streamed | learner updates (per s) "
        "| updates owed at the end | p99 ms | sim speed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for condition, s in conds.items():
        lat = s["swap_latency_s"]
        lat_s = "—" if not lat["n"] else f"{lat['median']:.2f} / {lat['max']:.2f} (n={lat['n']})"
        swaps = "/".join(f"{a} ({b})" for a, b in zip(s["swaps"], s["rollbacks"], strict=True))
        lost = (
            "/".join(
                f"{a}/{b} ({j} before the learner joined)"
                for a, b, j in zip(s["steps_lost"], s["steps_offered"], s["steps_before_join"], strict=True)
            )
            or "—"
        )
        upd = "/".join(f"{u} ({r:.1f})" for u, r in zip(s["learner_updates"], s["learner_updates_per_s"], strict=True))
        lines.append(
            f"| `{condition}` | {_fmt_list(s['takeovers_early'])} → {_fmt_list(s['takeovers_late'])} | "
            f"{_fmt_list(s['human_share_early'])} → {_fmt_list(s['human_share_late'])} | {swaps} | "
            f"{'/'.join(str(n) for n in s['bundles_exported'])} | {lat_s} | {lost} | {upd} | "
            f"{_fmt_list(s['learner_pending'], '{:.0f}')} | {_fmt_ms(s['p99_ms'])} | "
            f"{_fmt_list(s['sim_speed'], '{:.3f}')} |"
        )
    b = summary["baseline"]
    lines += [
        "",
        "Per seed, separated by `/`. Takeovers: intervention onsets per recorded episode, episodes that started in "
        f"the first vs the last {EARLY_LATE_FRACTION:.0%} of the run. Swap latency: the learner's announcement "
        "stamp → the first recorded tick on the new bundle (verification, the wait for the next episode start, and "
        "the episode start itself). Steps lost: steps the policy node offered to the stream that the learner did "
        "not take as fresh (dropped by the node, lost on the way, or sent before the learner joined). Updates owed: "
        "the learner's backlog at the stop (`updates_per_step` per step received minus updates done). Sim speed: "
        "control ticks / (control_hz × wall-clock); the simulated robot steps on a real-time deadline thread and "
        "publishes no /clock here, so 1.0 is the most it can be. The node's own verification time of its last "
        "swap: "
        + "; ".join(f"`{c}` " + _fmt_list(s["node_last_verify_s"], "{:.2f} s") for c, s in conds.items())
        + ". Safety-chain activations: the chain's counters (the operator's commands pass the same filters) over "
        "the control ticks; the offline evaluation runs without the chain.",
        "",
        "Control loop (policy node, joint-state arrival → command published):",
        "",
        "| run | p50 ms | p99 ms | deadline misses | safety-chain activations per tick |",
        "|---|---|---|---|---|",
    ]
    for condition, s in conds.items():
        lines.append(
            f"| `{condition}` with the learner (per seed) | {_fmt_ms(s['p50_ms'])} | {_fmt_ms(s['p99_ms'])} | "
            f"{_fmt_list(s['deadline_miss_rate'], '{:.2%}')} | {_fmt_safety(s['safety_per_tick'])} |"
        )
    if b["runs"]:
        lines.append(
            f"| no learner, no operator ({data['baseline_minutes']:g} min) | {_fmt_ms(b['p50_ms'])} | "
            f"{_fmt_ms(b['p99_ms'])} | {_fmt_list(b['deadline_miss_rate'], '{:.2%}')} | "
            f"{_fmt_safety(b['safety_per_tick'])} |"
        )
        p99_with = [x for s in conds.values() for x in s["p99_ms"] if x is not None]
        p99_without = [x for x in b["p99_ms"] if x is not None]
        if p99_with and p99_without:
            ratio = float(np.median(p99_with)) / float(np.median(p99_without))
            lines += [
                "",
                f"Median p99 with a learner {np.median(p99_with):.2f} ms vs {np.median(p99_without):.2f} ms without: "
                f"{ratio:.2f}x.",
            ]
    ops = sorted((r["seed"], r["operator_log"]) for r in data["runs"] if r["condition"] == "operator")
    if ops:
        lines += ["", "Operator (its own log): " + "; ".join(_describe_operator(seed, o) for seed, o in ops) + "."]
    problems = [f"`{r['condition']}` s{r['seed']}: " + "; ".join(p) for r in data["runs"] if (p := run_problems(r))]
    if problems:
        lines += ["", "Problems seen in the runs:", "", *(f"* {p}" for p in problems)]
    lines.append("")
    return "\n".join(lines)


def _fmt_safety(per_seed: Sequence[dict[str, float]]) -> str:
    return " / ".join(", ".join(f"{k} {v:.3f}" for k, v in d.items()) or "none" for d in per_seed) or "—"


def _describe_operator(seed: int, o: dict[str, Any]) -> str:
    mean = "—" if o["mean_takeover_s"] is None else f"{o['mean_takeover_s']:.2f} s"
    handbacks = ", ".join(f"{k} {v}" for k, v in o["handbacks"].items()) or "none"
    return f"seed {seed}: {o['takeovers']} takeovers, mean {mean}; hand-backs: {handbacks}"


def run_problems(r: dict[str, Any]) -> list[str]:
    """What went wrong in a run, from its own counters (empty when nothing did)."""
    out = []
    if r["deploy_exit_code"] not in (0, None):
        out.append(f"deploy exited {r['deploy_exit_code']} (a node was SIGKILLed or died: see its deploy.log)")
    lr = r.get("learner", {})
    if lr and lr.get("errors"):
        out.append(f"learner errors {lr['errors']}: {lr.get('last_error', '')}")
    if lr and lr.get("worker_alive_at_stop") is False:
        out.append("the learner's training thread had stopped before the run ended")
    if r.get("node_refusals"):
        out.append(f"{r['node_refusals']} bundles refused by the node (last: {r.get('node_last_refusal', '')})")
    if lr and not r["bundles"]:
        out.append("the learner exported no bundle")
    elif r["bundles"] and not any(s["kind"] == "swap" for s in r["swaps"]):
        out.append("no bundle was ever swapped in")
    if r.get("watchdog_ticks"):
        out.append(f"{r['watchdog_ticks']} watchdog ticks")
    if r.get("policy_errors"):
        out.append(f"{r['policy_errors']} policy errors")
    if r["condition"] == "operator" and not r["operator_log"]["takeovers"]:
        out.append("the operator never took over")
    return out


def merge(paths: Sequence[Path]) -> dict[str, Any]:
    keys = ("minutes", "eval_episodes", "eval_seed", "learner_params", "demos")
    shards, runs, command = merge_shards(paths, keys, lambda r: (r["condition"], r["seed"]), "bench/hil_push.py")
    if any(sh["base"]["sha256"] != shards[0]["base"]["sha256"] for sh in shards):
        raise SystemExit("shards differ in ['base (sha256)']: they measured different things")
    data = {**shards[0], "runs": runs, "baselines": [b for sh in shards for b in sh.get("baselines", [])]}
    data["command"] = command
    return data


def _load_lines(data: dict[str, Any]) -> list[str]:
    """The machine's load during the runs (1-min load average, sampled by the harness), where it was recorded."""
    rows = [(r["condition"], r["seed"], r["load_avg_1min"]) for r in data["runs"] if r.get("load_avg_1min")]
    if not rows:
        return []
    per_run = "; ".join(f"`{c}` s{s}: mean {la['mean']:.1f}, max {la['max']:.1f}" for c, s, la in rows)
    return [f"Load average (1 min) during the runs, sampled by the harness: {per_run}.", ""]
