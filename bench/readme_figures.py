"""README.md's measured figures, rendered from the benchmark JSON files that measured them.

    .venv/bin/python bench/readme_figures.py            # rewrite the marked blocks of README.md
    .venv/bin/python bench/readme_figures.py --check    # exit 1 with a diff when README.md is stale

Every number in README.md that describes a measurement sits between marker comments

    <!-- figures:begin NAME -->
    ...
    <!-- figures:end NAME -->

and is written here from `docs/benchmarks/*.json` (each written by the bench script, or by `robot-rl demo
--figures-out`, that measured it). Targets, "met"/"missed" verdicts and the words around a figure are computed from
the numbers, never typed in. `tests/bench/test_readme_figures.py` runs `--check`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
DATA_DIR = REPO_ROOT / "docs" / "benchmarks"
LINK = "docs/benchmarks"  # README-relative path of the data files, for links

MARKER = re.compile(
    r"(?P<begin><!-- figures:begin (?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<end><!-- figures:end (?P=name) -->)",
    re.DOTALL,
)

Data = Callable[[str], dict[str, Any]]
"""Loads `<name>.json` from the data directory."""


class FiguresError(ValueError):
    """README's markers and the renderers disagree, or a JSON file lacks a figure the README needs."""


# ----------------------------------------------------------------------------- small formatting helpers


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _short_env(env_id: str) -> str:
    """ "robot_rl/PandaReach-v0" -> "PandaReach"."""
    return re.sub(r"-v\d+$", "", env_id.split("/")[-1])


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _need(d: dict[str, Any], *path: str) -> Any:
    """d[path[0]][path[1]]..., or a FiguresError naming the missing key."""
    cur: Any = d
    for i, key in enumerate(path):
        if not isinstance(cur, dict) or key not in cur:
            raise FiguresError(f"missing figure {'.'.join(path[: i + 1])!r}")
        cur = cur[key]
    return cur


# ----------------------------------------------------------------------------- the benchmark table


def row_sac_throughput(data: Data) -> list[str]:
    d = data("sac_vs_sb3")
    tp = _need(d, "throughput")
    envs = list(tp)
    one = [t["1"]["robot_rl"] / t["1"]["sb3"] for t in _need(d, "throughput_by_threads").values() if "1" in t]
    target = _need(d, "target_throughput_ratio")
    ratios = " / ".join(f"{tp[e]['ratio']:.2f}x" for e in envs)
    rates = ", ".join(f"{tp[e]['ours_steps_per_s']:.0f} vs {tp[e]['sb3_steps_per_s']:.0f}" for e in envs)
    one_s = f"{min(one):.2f}x" if f"{min(one):.2f}" == f"{max(one):.2f}" else f"{min(one):.2f}–{max(one):.2f}x"
    return [
        f"SAC env-steps/s vs Stable-Baselines3, same hyperparameters, {' / '.join(envs)} (each at its best thread "
        "count)",
        f"**{ratios}** ({rates} steps/s); {one_s} on one thread",
        f"{target:g}x: {_verdict(d['throughput_target_met'])} (see [sac_vs_sb3.md]({LINK}/sac_vs_sb3.md))",
    ]


def row_sac_returns(data: Data) -> list[str]:
    d = data("sac_vs_sb3")
    (env, returns), *_ = _need(d, "returns").items()
    sb3 = returns["sb3"]
    names = {"sb3": "SB3", "classic": "ours classic", "crossq": "ours CrossQ"}
    parts = [
        f"{names.get(k, k)} {v['mean_return']:.0f} ({v['min_return']:.0f}–{v['max_return']:.0f})"
        for k, v in sorted(returns.items(), key=lambda kv: kv[0] != "sb3")
    ]
    worse = [names.get(k, k) for k, v in returns.items() if k != "sb3" and v["mean_return"] < sb3["mean_return"]]
    steps = int(sb3["final_step"])
    seeds = min(v["seeds"] for v in returns.values())
    return [
        f"{env} return at {steps // 1000}k steps, {seeds} seeds (mean, min–max)",
        ", ".join(parts),
        "not worse than SB3: " + ("met" if not worse else f"**missed** ({', '.join(worse)})"),
    ]


def row_sac_wallclock(data: Data) -> list[str]:
    d = data("sac_vs_sb3")
    derived = _need(d, "wallclock_speedup_derived_by_recipe", "crossq")
    raw = _need(d, "wallclock_speedup_raw_by_recipe", "crossq")
    target = _need(d, "target_wallclock_speedup")
    return [
        "CrossQ recipe, wall-clock to SB3's final return",
        f"{derived:.1f}x (steps-to-threshold x quiet step rate); {raw:.1f}x raw from the shared-machine runs",
        f"{target:g}x: {_verdict(derived >= target)} on the conservative figure",
    ]


def row_onnx(data: Data) -> list[str]:
    d = data("onnx_latency")
    target = _need(d, "target_p99_us")
    bare = _need(d, "onnxruntime_session_run")
    hidden = _need(d, "model", "hidden")
    return [
        f"ONNX Runtime actor ({len(hidden)}x{hidden[0]}) latency, batch 1, via `OnnxPolicy.act`",
        f"p50 {d['p50_us']:.0f} µs, p99 {d['p99_us']:.0f} µs; torch eager "
        f"{_need(d, 'ratio_torch_eager_over_onnxruntime', 'p50'):.1f}x slower at p50",
        f"p99 ≤ {target:g} µs: {_verdict(d['p99_us'] <= target)} (a bare ORT session, same run: p50 "
        f"{bare['p50_us']:.0f} µs / p99 {bare['p99_us']:.0f} µs)",
    ]


def row_generative_inference(data: Data) -> list[str]:
    d = data("generative_inference")
    model, results = _need(d, "model"), _need(d, "results")
    names = {"meanflow_k1": "MeanFlow 1-step", "meanflow_k2": "MeanFlow 2-step", "flow_k10": "flow 10-step",
             "ddim_k10": "DDIM 10-step"}  # fmt: skip
    base = _need(results, "sac_actor", "onnx")
    cells = [
        f"{names.get(k, k)} {r['onnx']['p50_us'] / 1e3:.2f} / {r['onnx']['p99_us'] / 1e3:.2f} ms "
        f"({r['onnx']['p50_us'] / base['p50_us']:.0f}x / {r['onnx']['p99_us'] / base['p99_us']:.0f}x)"
        for k, r in results.items()
        if k in names
    ]
    verdicts = []
    for t in _need(d, "targets"):
        why = " (its CPU-time p99 is within: waiting for a core)" if not t["met"] and t.get("cpu_within") else ""
        verdicts.append(
            f"{names.get(t['variant'], t['variant'])} p99 ≤ {t['p99_ms_max']:g} ms: {_verdict(t['met'])}{why}"
        )
    untrained = "untrained, default sizes" if d.get("untrained") else "trained"
    return [
        f"Generative chunk policies (H = {model['chunk_size']}, A = {model['act_dim']}, T_o = {model['obs_history']}; "
        f"{untrained}), batch 1 via `OnnxPolicy.plan` (`bench/generative_inference.py`)",
        "p50 / p99 (x the SAC actor's `act` p50 / p99, same run): "
        + "; ".join(cells)
        + f"; SAC actor `act` {base['p50_us']:.0f} / {base['p99_us']:.0f} µs",
        "; ".join(verdicts),
    ]


BASELINES_SHOWN = ("bc_chunk", "bc")
"""Beside the variants the benchmark judges (its targets'), the README row names the MLP baselines; the rest of the
variants are in the benchmark's markdown."""


def row_generative_success(data: Data) -> list[str]:
    d = data("generative_success")
    summary, targets = _need(d, "summary"), _need(d, "targets")
    judged = list(dict.fromkeys(t["variant"] for t in targets))  # the benchmark's order, each once
    cells = []
    for task, by in summary.items():
        seeds = sorted({s["seeds"] for v, s in by.items() if v != "expert"})
        expert = by.get("expert", {}).get("mean")
        shown = ", ".join(f"{v} {_pct(by[v]['mean'])}" for v in (*judged, *BASELINES_SHOWN) if v in by)
        head = f"{_short_env(task)} ({'/'.join(map(str, seeds))} seed{'' if seeds == [1] else 's'}" + (
            f", expert {_pct(expert)})" if expert is not None else ")"
        )
        cells.append(f"{head}: {shown}")
    met = [t for t in targets if t["met"]]
    missed = [f"{_short_env(t['task'])} {t['variant']}" for t in targets if not t["met"]]
    few = sorted({t["seeds"] for t in targets if t["seeds"] < 5})
    verdict = f"{len(met)} of {len(targets)} success targets met"
    if missed:
        verdict += f"; **missed**: {_and(missed)}"
    if few:
        verdict += f" (verdicts on {'/'.join(map(str, few))} seeds where fewer than 5)"
    if not d.get("complete", False):
        verdict += "; the run did not cover every task and seed"
    return [
        "Generative policies vs the MLP baseline and the scripted expert, success from expert data "
        "(`bench/generative_success.py`, [generative_success.md](docs/benchmarks/generative_success.md))",
        "; ".join(cells),
        "diffusion/flow ≥ 90% of the expert (PandaPush, Meta-World), ≥ 90% on the multimodal PandaReachAround, "
        f"MeanFlow 1-step within 5 points of flow on PandaPush: {verdict}",
    ]


def _interleaved_note(d: dict[str, Any]) -> str:
    """The target cell of a cost benchmark run in interleaved rounds: no target, and the load it ran under."""
    loads = [float(r["load_avg_1m_before"]) for r in _need(d, "runs")]
    cores = _need(d, "machine", "logical_cpus")
    shared = ": other jobs shared the machine, the ratios hold better than the absolute rates)"
    return (
        f"reported, no target (median of {_need(d, 'config', 'rounds')} interleaved rounds; load "
        f"{min(loads):.1f}–{max(loads):.1f} on {cores} cores" + (shared if max(loads) > cores else ")")
    )


def row_generative_training_cost(data: Data) -> list[str]:
    d = data("generative_training_cost")
    summary, peer = _need(d, "summary"), _need(d, "peer")
    cells = [
        f"{m} {s['updates_per_s_median']:.1f} steps/s ({s['ratio_to_peer_median']:.2f}x {peer})"
        for m, s in summary.items()
        if s.get("ratio_to_peer_median") is not None
    ]
    return [
        "Generative learners' training cost on the PandaPush data, gradient steps/s and the ratio to the chunked "
        "MLP on the same batches (`bench/generative_training_cost.py`, "
        "[generative_training_cost.md](docs/benchmarks/generative_training_cost.md))",
        "; ".join(cells),
        _interleaved_note(d),
    ]


def row_residual_cost(data: Data) -> list[str]:
    d = data("residual_cost")
    summary = _need(d, "summary")
    cells = [
        f"{m} {s['env_steps_per_s_median']:.0f} env steps/s ({s['ratio_to_sac_median']:.2f}x SAC)"
        for m, s in summary.items()
        if s.get("ratio_to_sac_median") is not None
    ]
    return [
        "Fine-tuning learners' environment steps per second next to plain SAC, PandaReach online, residuals on the "
        "scripted expert (`bench/residual_cost.py`, [residual_cost.md](docs/benchmarks/residual_cost.md))",
        "; ".join(cells),
        _interleaved_note(d),
    ]


def row_residual_push(data: Data) -> list[str]:
    d = data("residual_push")
    summary = _need(d, "summary")
    cells = []
    for learner, s in summary.items():
        gain = f", {100 * s['gain_iqm']:+.0f} points over its base ({_pct(s['base_iqm'])})" if "gain_iqm" in s else ""
        cells.append(f"{learner} {_pct(s['iqm'])}{gain} ({len(s['seeds'])} seed(s))")
    residual = [summary[k] for k in ("residual", "residual_sac") if k in summary]
    met = residual and max(s["gain_iqm"] for s in residual) >= 0.30
    five = all(len(s["seeds"]) >= 5 for s in residual)
    verdict = ("met" if five else "met on fewer than 5 seeds") if met else "missed"
    target = f"residual RL +30 points within 10⁵ env steps, 5 seeds: {verdict}"
    return [
        f"Fine-tuning from {d['expert_episodes']} demonstrations on PandaPush (sparse), final success IQM after "
        f"{d['env_steps']:,} env steps (`bench/residual_push.py`, "
        "[residual_push.md](docs/benchmarks/residual_push.md))",
        "; ".join(cells),
        target,
    ]


def row_residual_sim2sim(data: Data) -> list[str]:
    d = data("residual_sim2sim")
    s = _need(d, "summary")
    before, after = s["before/pybullet"]["iqm"], s["after/pybullet"]["iqm"]
    mj_before, mj_after = s["before/mujoco"]["iqm"], s["after/mujoco"]["iqm"]
    gap = mj_before - before
    closed = "closed" if after >= mj_before - 0.05 else f"{100 * max(0.0, after - before) / max(gap, 1e-9):.0f}% closed"
    return [
        f"Sim-to-sim fine-tuning: a MuJoCo reach policy, residual RL ({d['residual_steps']:,} steps) in PyBullet "
        "(`bench/residual_sim2sim.py`, [residual_sim2sim.md](docs/benchmarks/residual_sim2sim.md))",
        f"PyBullet {_pct(before)} → {_pct(after)}; MuJoCo {_pct(mj_before)} → {_pct(mj_after)} "
        f"(IQM over {len(d['runs'])} seed(s))",
        f"close the gap ({100 * gap:.0f} points): {closed}; MuJoCo must not collapse: "
        + ("held" if mj_after >= mj_before - 0.1 else "**lost more than 10 points**"),
    ]


def row_generative_demo(data: Data) -> list[str]:
    d = data("demo_flow_reach_around")
    s = _need(d, "summary")
    ros = s.get("ros_task_success_rate")
    cells = [
        f"{s['expert_episodes']} expert episodes, {s['steps']:,} updates ({s['train_wall_s']:.0f} s), "
        f"{s['sampler']}, {s['chunk']}",
        f"MuJoCo {_pct(s['mujoco_success_rate'])}, PyBullet twin {_pct(s['pybullet_success_rate'])} "
        f"({d['eval_episodes']} episodes each)",
    ]
    if isinstance(ros, float | int):
        done = s["ros_episodes_finished"]
        cells.append(
            f"ROS 2 behind the Panda's safety chain {_pct(ros)} ({round(ros * done)} of {done} episodes in "
            f"{d['deploy_s']:g} s; {s['ros_chunk_missed_actions']} missed actions, "
            f"{s['ros_chunk_async_plans']} asynchronous plans)"
        )
    minutes, seconds = divmod(round(_need(d, "wall_s")), 60)
    return [
        f"`{d['command']}` (the multimodal task end to end; [JSON](docs/benchmarks/demo_flow_reach_around.json))",
        "; ".join(cells),
        f"a few minutes on 2 cores: {minutes} min {seconds:02d} s",
    ]


def row_sim_speed(data: Data) -> list[str]:
    d = data("sim_speed")
    target = _need(d, "target_wrapper_overhead_mujoco")
    mj = [r for r in _need(d, "results").values() if r["backend"] == "mujoco"]
    met = [_short_env(r["env_id"]) for r in mj if r["wrapper_overhead"] <= target]
    missed = [r for r in mj if r["wrapper_overhead"] > target]
    verdict = f"≤ {_pct(target)}: " + "; ".join(
        part
        for part in (
            f"met on {_and(met)}" if met else "",
            f"**missed** on {_and([_short_env(r['env_id']) for r in missed])}" if missed else "",
        )
        if part
    )
    if missed:
        worst = max(missed, key=lambda r: r["wrapper_overhead"])
        us = worst["us_per_step"]
        verdict += (
            f" ({us['bare']:.0f} µs of physics per {_short_env(worst['env_id'])} step allows {target * us['bare']:.1f}"
            f" µs of Python; it takes {us['wrapper']:.0f})"
        )
    return [
        "Sim wrapper overhead over bare MuJoCo stepping (`bench/sim_speed.py`)",
        ", ".join(f"{_short_env(r['env_id'])} {_pct(r['wrapper_overhead'])}" for r in mj),
        verdict,
    ]


def row_sim2sim(data: Data) -> list[str]:
    d = data("sim2sim")
    names = {"mujoco": "MuJoCo", "pybullet": "PyBullet"}
    pairs = _need(d, "pairs")
    cells = []
    for key, v in pairs.items():
        a, b = key.split("->")
        cells.append(f"{names.get(a, a)}→{names.get(b, b)} {v['success_rate']:.2f}")
    return [
        f"Sim-to-sim, SAC reach {d['train_steps'] // 1000}k steps (`bench/sim2sim.py`)",
        ", ".join(cells) + " success",
        "(a figure, no target)",
    ]


def row_node_latency(data: Data) -> list[str]:
    d = data("node_latency")
    targets = _need(d, "targets")
    rates = [r for r in targets if r in d]
    parts = []
    for r in rates:
        x = d[r]
        parts.append(
            f"{r} Hz: p50 {x['p50_ms']:.2f} ms, p99 {x['p99_ms']:.2f} ms, {100 * x['deadline_miss_rate']:.2g}% misses"
        )
    echo = " / ".join(f"{d[r]['echo']['p99_ms']:.2f}" for r in rates)
    p99_parts, miss_parts = [], []
    for r in rates:
        x, t = d[r], targets[r]
        floor = " (the echo floor is above it)" if d[r]["echo"]["p99_ms"] > t["p99_ms"] else ""
        p99_parts.append(f"{_verdict(x['p99_ms'] <= t['p99_ms'])} at {r} Hz{floor}")
        miss_parts.append(_verdict(x["deadline_miss_rate"] <= t["deadline_miss_rate"]) + f" at {r} Hz")
    p99_targets = {t["p99_ms"] for t in targets.values()}
    if len({v.split(" at ")[0] for v in miss_parts}) == 1:  # one verdict for every rate: say it once
        miss_parts = [miss_parts[0].split(" at ")[0]]
    miss_targets = " / ".join(f"{100 * targets[r]['deadline_miss_rate']:g}%" for r in rates)
    return [
        "Policy node `/joint_states` → command, 2x256 actor + safety chain (`bench/node_latency.py`)",
        "; ".join(parts) + f" (bare rclpy echo p99: {echo} ms)",
        f"p99 ≤ {'/'.join(f'{t:g}' for t in sorted(p99_targets))} ms: {', '.join(p99_parts)}; misses ≤ "
        f"{miss_targets}: {', '.join(miss_parts)}",
    ]


def _first(d: dict[str, Any], *paths: tuple[str, ...]) -> Any:
    """The first of several key paths present in d (the safety bench's JSON has grown new keys over time)."""
    for path in paths:
        try:
            return _need(d, *path)
        except FiguresError:
            continue
    raise FiguresError(f"none of {['.'.join(p) for p in paths]} in safety_chain.json")


def row_safety_chain(data: Data) -> list[str]:
    d = data("safety_chain")
    target = _need(d, "target_p99_us")
    p50 = _first(d, ("p50_us",), ("chain", "p50_us"))
    p99 = _first(d, ("p99_us",), ("chain", "p99_us"))
    work = d.get("workload", {})
    what = f"{work['n_joints']}-DoF" if "n_joints" in work else "one step"
    if work.get("workspace_box"):
        what += " with workspace box"
    fk = str(d.get("forward_kinematics") or work.get("forward_kinematics", ""))
    if fk:
        what += f" ({'URDF' if 'urdf' in fk.lower() else 'stub'} FK)"
    split = ""
    unchanged = d.get("chain_unchanged_steps", {}).get("p99_us")
    clipped = d.get("chain_clipped_steps", {}).get("p99_us")
    changed = work.get("fraction_changed")
    if unchanged is not None and clipped is not None and changed is not None:
        split = (
            f" (commands passed unchanged p99 {unchanged:.0f} µs; the {_pct(changed)} it changes p99 {clipped:.0f} µs)"
        )
    ratio = d.get("ratio_chain_over_peer", {}).get("p50")
    peer = f"; {ratio:.1f}x `np.clip` + `isfinite` at p50" if ratio is not None else ""
    return [
        f"Safety chain per step, {what} (`bench/safety_chain.py`)",
        f"p50 {p50:.0f} µs, p99 {p99:.0f} µs{split}{peer}",
        f"p99 ≤ {target:g} µs: {_verdict(p99 <= target)}",
    ]


def row_recorder(data: Data) -> list[str]:
    d = data("recorder_throughput")
    ours, peer = _need(d, "ours", "steps_per_s"), _need(d, "rosbags_mcap_writer", "steps_per_s")
    need = _need(d, "needed_steps_per_s")
    return [
        "Episode recorder (`bench/recorder_throughput.py`)",
        f"{ours:,.0f} steps/s sustained incl. fsync + verification, {ours / peer:.2f}x rosbags' MCAP writer "
        f"({peer:,.0f}, no fsync or verification)",
        f"≥ {need:,.0f} steps/s (a 500 Hz loop): {_verdict(ours >= need)} ({ours / need:.0f}x)",
    ]


def row_reliability(data: Data) -> list[str]:
    d = data("reliability")
    camp, targets = _need(d, "campaign"), _need(d, "targets")
    inputs, checked, unsafe = camp["adversarial_inputs"], camp["commands_checked"], camp["unsafe_commands"]
    kills = _need(d, "kill_matrix")
    held = [k for k in kills if k.get("held_in_time") is not None]
    worst_hold = max((k["hold_s"] for k in held if k.get("hold_s") is not None), default=None)
    lost = [k["data_lost_s"] for k in kills if k.get("data_lost_s") is not None]
    tamper = _need(d, "tamper_matrix")
    as_expected = sum(1 for t in tamper if t["outcome"] == t["expected"])
    hold_text = f"worst hold {worst_hold:.2f} s" if worst_hold is not None else "no hold measured"
    result = (
        f"{inputs:,} adversarial inputs over ROS, {checked:,} published commands judged against the URDF: "
        f"{unsafe} unsafe; kill -9 of each process: {hold_text}, at most {max(lost, default=0.0):.2f} s of "
        f"recorded data lost; tampered bundles: {as_expected}/{len(tamper)} as expected"
    )
    checks = [
        ("0 unsafe", unsafe <= targets["unsafe_commands_max"]),
        (f"≥ {targets['adversarial_inputs_min']:,} inputs", inputs >= targets["adversarial_inputs_min"]),
        ("holds in time", bool(held) and all(k["held_in_time"] for k in held)),
        (f"≤ {targets['data_lost_s_max']:g} s lost", max(lost, default=0.0) <= targets["data_lost_s_max"]),
        ("tamper refused", as_expected == len(tamper)),
    ]
    missed = [name for name, ok in checks if not ok]
    verdict = "met" if not missed else "**missed**: " + ", ".join(missed)
    return [
        "Reliability: adversarial campaign, kill -9 and tamper matrices (`bench/reliability.py`, "
        "[reliability.md](docs/benchmarks/reliability.md))",
        result,
        "0 unsafe commands over ≥ 10⁶ inputs, hold within the robot's timeout + one period, ≤ 1 s lost, every "
        f"tampered bundle refused: {verdict}",
    ]


def row_cbf_solvers(data: Data) -> list[str]:
    d = data("cbf_solvers")
    be, target = _need(d, "backends"), _need(d, "target_p99_us")
    cells = "; ".join(f"{name} {b['p50_us']:.0f} / {b['p99_us']:.0f} µs" for name, b in be.items())
    link = _need(d, "link_filter", "all")
    met = [n for n, ok in _need(d, "target_met").items() if ok]
    return [
        f"CBF filter: QP solve time p50 / p99 at {d['workload']['n_joints']} DoF, "
        f"{d['workload']['barrier_rows_per_step']} barrier rows (`bench/cbf_solvers.py`, "
        "[cbf_solvers.md](docs/benchmarks/cbf_solvers.md))",
        f"{cells}; the whole link step (kinematics, rows, solve) {link['p50_us']:.0f} / {link['p99_us']:.0f} µs; "
        f"default solver {d['default_solver']}",
        f"p99 ≤ {target:g} µs: met by {', '.join(met) or 'none'}"
        + (f" (load {d['machine']['load_avg_1m_before_after'][0]:.1f} on {d['machine']['logical_cpus']} cores)"),
    ]


def row_cbf_obstacle(data: Data) -> list[str]:
    d = data("cbf_obstacle")
    controller = [r for r in _need(d, "conditions") if r.get("policy", "reach controller") == "reach controller"]
    learned = [r for r in d["conditions"] if r not in controller]
    rows = {(r["condition"], r["max_steps"]): r for r in controller}
    short = min(n for _, n in rows)
    long = max(n for _, n in rows)
    f = _need(d, "fuzz")
    sac = {(r["condition"], r["max_steps"]): r for r in learned}
    sac_text = (
        f"; a SAC reach bundle: collisions limits only {_pct(sac[('none', short)]['collision_rate'])}, hold "
        f"{_pct(sac[('hold', short)]['collision_rate'])}, CBF {_pct(sac[('cbf', short)]['collision_rate'])}, "
        f"success {_pct(sac[('cbf', long)]['success_rate'])} behind the CBF in {long} steps"
        if sac
        else ""
    )
    clean = f["steps"] >= 100_000 and f["pillar_violations"] == 0 and f["joint_limit_violations"] == 0
    return [
        "Policies that never saw the obstacle at the reach-around pillar (the straight-line reach controller; a SAC "
        "reach bundle), behind the limits only, the workspace hold and the CBF filter; adversarial fuzz "
        "(`bench/cbf_obstacle.py`, "
        "[cbf_obstacle.md](docs/benchmarks/cbf_obstacle.md))",
        f"collisions: limits only {_pct(rows[('none', short)]['collision_rate'])}, hold "
        f"{_pct(rows[('hold', short)]['collision_rate'])}, CBF {_pct(rows[('cbf', short)]['collision_rate'])}; "
        f"success in {short} / {long} steps: hold {_pct(rows[('hold', short)]['success_rate'])} / "
        f"{_pct(rows[('hold', long)]['success_rate'])}, CBF {_pct(rows[('cbf', short)]['success_rate'])} / "
        f"{_pct(rows[('cbf', long)]['success_rate'])}; fuzz: {f['steps']:,} commands, "
        f"{f['pillar_violations']} pillar and {f['joint_limit_violations']} joint-limit violations{sac_text}",
        "0 violations over ≥ 10⁵ fuzzed commands (true geometry): "
        + ("met" if clean else "**missed**")
        + "; CBF keeps the task alive where the hold freezes it: "
        + ("met" if rows[("cbf", long)]["success_rate"] > rows[("hold", long)]["success_rate"] else "**missed**"),
    ]


def row_lac_robustness(data: Data, name: str = "lac_robustness") -> list[str]:
    d = data(name)
    targets = _need(d, "targets")
    seeds = {r["algo"] for r in _need(d, "runs")}
    n = {a: sum(1 for r in d["runs"] if r["algo"] == a) for a in sorted(seeds)}
    judged = [t for t in targets if t.get("met") is not None]
    cells = []
    for t in judged:
        if t["kind"] == "nominal cost":
            cells.append(f"nominal cost LAC {t['lac_cost']:.1f} vs SAC {t['sac_cost']:.1f}")
        else:
            cells.append(
                f"{t['kind']} {t['level']:g} {t['unit']}: SAC fails {_pct(t['sac_failure'])}, LAC "
                f"{_pct(t['lac_failure'])}"
            )
    if not any(t.get("level") is not None for t in targets):  # a task that never fails (reach): success per kind
        summary = _need(d, "summary")
        for kind in next(iter(summary.values()), {}):
            tops = []
            for algo, by_kind in summary.items():
                levels = by_kind.get(kind, {})
                top = max(levels, key=float) if levels else None
                nominal = next(
                    (lv for lv, c in levels.items() if float(lv) == (1.0 if str(c["unit"]).startswith("x") else 0.0)),
                    None,
                )
                if top is not None and nominal is not None and levels[top]["success"] and levels[nominal]["success"]:
                    tops.append(
                        f"{algo.upper()} {_pct(levels[nominal]['success']['mean'])} → "
                        f"{_pct(levels[top]['success']['mean'])}"
                    )
            if tops and top is not None:
                unit = summary[next(iter(summary))][kind][top]["unit"]
                cells.append(f"success nominal → {kind} {top} {unit}: " + ", ".join(tops))
    missed = [t["kind"] for t in judged if not t["met"]]
    verdict = ("met" if not missed else "**missed**: " + ", ".join(missed)) if judged else "not judged"
    return [
        f"LAC vs SAC (CrossQ) robustness on {d['config']['env'].split('/')[-1]} (`bench/lac_robustness.py`, "
        f"[{name}.md](docs/benchmarks/{name}.md))",
        "; ".join(cells) + " (training seeds: " + ", ".join(f"{a} {k}" for a, k in n.items()) + ")",
        "LAC's failure ≤ ½ SAC's where SAC fails > 50%, nominal cost ≤ 1.2× SAC's, 5 seeds: "
        + verdict
        + ("" if min(n.values(), default=0) >= 5 else " (fewer than 5 seeds)"),
    ]


def row_lac_robustness_reach(data: Data) -> list[str]:
    return row_lac_robustness(data, "lac_robustness_pandareach")


def row_node_latency_cbf(data: Data) -> list[str]:
    from node_latency import paired_runs  # the bench's own pairing rule (same executor, recording off)

    d = data("node_latency")
    cells = []
    for rate, (off, on) in sorted(paired_runs(_need(d, "runs"), "cbf").items()):
        cells.append(
            f"{rate} Hz: p99 {off['policy_node']['p99_ms']:.2f} → {on['policy_node']['p99_ms']:.2f} ms "
            f"({on['policy_node']['p99_ms'] - off['policy_node']['p99_ms']:+.2f} ms; the echo node moved "
            f"{_need(on, 'echo', 'p99_ms') - _need(off, 'echo', 'p99_ms'):+.2f} ms between the same runs)"
        )
    if not cells:
        raise FiguresError("node_latency.json has no CBF run: run bench/node_latency.py without --no-cbf-run")
    return [
        "Policy node with the `cbf` link on vs off, side by side (`bench/node_latency.py`, "
        "[node_latency.md](docs/benchmarks/node_latency.md))",
        "; ".join(cells),
        "reported (added p99), no target",
    ]


def row_safe_exploration(data: Data) -> list[str]:
    d = data("safe_exploration")
    runs = _need(d, "runs")
    by = {c: [r for r in runs if r["condition"] == c] for c in ("limits", "cbf")}
    cells = "; ".join(
        f"{c}: {sum(r['failed_episodes'] for r in rs)} of {sum(r['episodes'] for r in rs)} episodes"
        for c, rs in by.items()
    )
    return [
        f"Safe exploration: SAC training episodes that ended on the reach-around pillar, {d['steps']:,} steps per "
        f"run, {len(by['cbf'])} seed(s) (`bench/safe_exploration.py`, "
        "[safe_exploration.md](docs/benchmarks/safe_exploration.md))",
        cells,
        "reported, no target",
    ]


def _hil_cells(d: dict[str, Any]) -> list[str]:
    """Per condition: final success without the operator (IQM over seeds), interventions early → late."""
    cells = []
    for cond, c in _need(d, "summary", "conditions").items():
        cell = f"`{cond}` {_pct(c['final_success']['iqm'])} ({len(c['seeds'])} seed(s))"
        if cond == "operator":
            early, late = statistics.median(c["takeovers_early"]), statistics.median(c["takeovers_late"])
            cell += f", takeovers per episode {early:.2f} → {late:.2f}"
        cells.append(cell)
    return cells


def row_hil_push(data: Data) -> list[str]:
    """Issue 15's benchmark: the learner `residual_sac` (the default) and, where run, HG-DAgger (`bc`)."""
    reports = [data("hil_push")]
    try:
        reports.append(data("hil_push_hgdagger"))
    except FiguresError:
        pass
    d0 = reports[0]
    parts, finals, seeds = [], [], []
    for d in reports:
        algo = d["learner_params"].get("algo", "?")
        parts.append(f"learner `{algo}`: " + ", ".join(_hil_cells(d)))
        for cond, c in d["summary"]["conditions"].items():
            if cond == "operator":
                finals.append(c["final_success"]["iqm"])
                seeds.append(len(c["seeds"]))
    lat = [d["summary"]["conditions"][k]["swap_latency_s"] for d in reports for k in d["summary"]["conditions"]]
    lost = sum(sum(d["summary"]["conditions"][k]["steps_lost"]) for d in reports for k in d["summary"]["conditions"])
    offered = sum(
        sum(d["summary"]["conditions"][k]["steps_offered"]) for d in reports for k in d["summary"]["conditions"]
    )
    parts.append(
        f"swap latency median {statistics.median([x['median'] for x in lat if x.get('n')]):.1f} s; "
        f"{lost} of {offered:,} streamed steps lost, all before the learner joined"
        if all(
            sum(c["steps_lost"]) == sum(c["steps_before_join"])
            for d in reports
            for c in d["summary"]["conditions"].values()
        )
        else f"{lost} of {offered:,} streamed steps lost"
    )
    met = bool(finals) and max(finals) >= 0.8
    verdict = ("met" if min(seeds) >= 3 else "met on fewer than 3 seeds") if met else "**missed**"
    return [
        f"Human-in-the-loop learning over ROS 2 on PandaPush from a BC base ({_pct(d0['base']['success'])} without "
        f"help), success without the operator after {d0['minutes']:g} min of wall-clock (`bench/hil_push.py`, "
        "[hil_push.md](docs/benchmarks/hil_push.md))",
        "; ".join(parts),
        f"≥ 80% within 30 min with the operator, 3 seeds: {verdict} (1 seed per condition so far; other jobs "
        "loaded the machine)"
        if min(seeds) < 3
        else f"≥ 80% within 30 min with the operator, 3 seeds: {verdict}",
    ]


ROWS: list[Callable[[Data], list[str]]] = [
    row_sac_throughput,
    row_sac_returns,
    row_sac_wallclock,
    row_onnx,
    row_generative_inference,
    row_generative_success,
    row_generative_training_cost,
    row_generative_demo,
    row_residual_cost,
    row_residual_push,
    row_residual_sim2sim,
    row_hil_push,
    row_sim_speed,
    row_sim2sim,
    row_node_latency,
    row_node_latency_cbf,
    row_safety_chain,
    row_cbf_solvers,
    row_cbf_obstacle,
    row_safe_exploration,
    row_lac_robustness,
    row_lac_robustness_reach,
    row_recorder,
    row_reliability,
]


def block_benchmarks(data: Data) -> str:
    lines = ["| what | result | target |", "|---|---|---|"]
    lines += ["| " + " | ".join(row(data)) + " |" for row in ROWS]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the demo


DEMO_KEYS: list[tuple[str, str]] = [
    ("env", ""),
    ("steps", ""),
    ("train_wall_s", ""),
    ("torch_eval_return", "the torch policy at the end of training"),
    ("onnx_eval_return", "the exported bundle, run by ONNX Runtime in MuJoCo"),
    ("mujoco_success_rate", "end effector within 5 cm of the target at the end of the episode"),
    ("mujoco_final_distance_m", ""),
    ("pybullet_success_rate", "the same bundle, same seeded targets, in the PyBullet twin"),
    ("pybullet_final_distance_m", ""),
    ("ros_episodes_finished", "episodes the simulated robot ended during the {deploy_s:g} s ROS 2 run"),
    ("ros_task_success_rate", "their success, behind the chain with the Franka's limits"),
    ("ros_loop_p50_ms", "joint state in → command out, inside the policy node"),
    ("ros_loop_p99_ms", ""),
    ("ros_deadline_misses", ""),
    ("ros_safety_activations", "how often each safety link changed the policy's command"),
    ("ros_intervention_steps", "steps the scripted human drove ..."),
    ("ros_recorded_intervention_steps", "... and those labelled in the MCAP episodes"),
    ("ros_recorded_episodes", "runs/demo-*/ros_deploy/episodes/episode_*.mcap"),
    ("ros_node_exit_codes", ""),
    ("parity_max_abs_diff", "ONNX vs torch on the export's random + boundary observations"),
    ("bundle", ""),
]
"""The summary lines README shows, in order, with their comments (keys absent from the JSON are skipped)."""


def block_demo_intro(data: Data) -> str:
    d = data("demo")
    s = _need(d, "summary")
    minutes, seconds = divmod(round(_need(d, "wall_s")), 60)
    return (
        f"In {d['conditions']}, `{d['command']}` took **{minutes} min {seconds:02d} s** in all (training "
        f"{s['train_wall_s']:.0f} s at {s['steps_per_s']:.0f} steps/s):\n"
    )


def block_demo_summary(data: Data) -> str:
    d = data("demo")
    s = _need(d, "summary")
    width = max(len(k) for k, _ in DEMO_KEYS) + 2
    lines = ["```", "=== robot-rl demo summary ==="]
    for key, comment in DEMO_KEYS:
        if key not in s:
            continue
        value = s[key]
        if isinstance(value, float) and 0 < abs(value) < 1e-3:
            value = f"{value:.2g}"  # a tolerance-sized figure: two significant digits say all there is
        line = f"  {key:<{width}} {value}"
        if comment:
            line = f"{line:<{width + 16}} # {comment.format(**d)}"
        lines.append(line.rstrip())
    lines.append("```")
    return "\n".join(lines) + "\n"


def block_demo_reading(data: Data) -> str:
    s = _need(data("demo"), "summary")
    home, twin = s["mujoco_success_rate"], s["pybullet_success_rate"]
    text = (
        f"Read the figures together: the policy reaches {_pct(home)} in MuJoCo and {_pct(twin)} in the PyBullet twin "
        "(the sim-to-sim gap, [docs/sim2sim.md](docs/sim2sim.md))"
    )
    ros = s.get("ros_task_success_rate")
    if isinstance(ros, float | int):
        done = s["ros_episodes_finished"]
        acted = s.get("ros_safety_activations")
        links = _and(sorted(acted)) if isinstance(acted, dict) and acted else ""
        text += (
            f"; deployed in ROS 2 behind the safety chain it reaches {_pct(ros)} ({round(ros * done)} of {done} "
            "episodes)"
            + (f", with the chain's {links} acting on {sum(acted.values())} steps" if links else "")
            + (
                f" — {100 * (home - ros):.0f} points below MuJoCo alone: a sim-to-real warning the demo makes visible "
                "before a robot is involved."
                if ros < home
                else "."
            )
        )
    else:
        text += "."
    return text + "\n"


BLOCKS: dict[str, Callable[[Data], str]] = {
    "demo-intro": block_demo_intro,
    "demo-summary": block_demo_summary,
    "demo-reading": block_demo_reading,
    "benchmarks": block_benchmarks,
}
"""Every marked block README.md must hold, by marker name."""


# ----------------------------------------------------------------------------- render / check


def loader(data_dir: Path) -> Data:
    """`data(name)` reads `<data_dir>/<name>.json` (once)."""
    cache: dict[str, dict[str, Any]] = {}

    def data(name: str) -> dict[str, Any]:
        if name not in cache:
            path = data_dir / f"{name}.json"
            if not path.exists():
                raise FiguresError(f"{path} is missing: run the bench script that writes it")
            cache[name] = json.loads(path.read_text())
        return cache[name]

    return data


def render(readme: str, data_dir: Path) -> str:
    """README text with every marked block re-rendered from the JSON files in `data_dir`."""
    data = loader(data_dir)
    found = [m.group("name") for m in MARKER.finditer(readme)]
    unknown = sorted(set(found) - set(BLOCKS))
    missing = sorted(set(BLOCKS) - set(found))
    if unknown or missing:
        raise FiguresError(f"README markers: unknown {unknown}, missing {missing} (known: {sorted(BLOCKS)})")
    duplicated = sorted({n for n in found if found.count(n) > 1})
    if duplicated:
        raise FiguresError(f"README markers appear more than once: {duplicated}")

    def sub(m: re.Match[str]) -> str:
        # Blank lines around the body keep each block a separate Markdown block (a table must not run into a marker).
        return m.group("begin") + "\n" + BLOCKS[m.group("name")](data) + "\n" + m.group("end")

    return MARKER.sub(sub, readme)


def check(readme_path: Path, data_dir: Path) -> str:
    """A unified diff from README to what the JSON says ("" when README is current)."""
    current = readme_path.read_text()
    fresh = render(current, data_dir)
    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            fresh.splitlines(keepends=True),
            f"{readme_path.name} (committed)",
            f"{readme_path.name} (rendered from {data_dir})",
        )
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 with a diff when README is stale")
    ap.add_argument("--readme", type=Path, default=README)
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    try:
        if args.check:
            diff = check(args.readme, args.data_dir)
            if diff:
                print(diff, end="")
                print(f"{args.readme} is stale: run `python bench/readme_figures.py`", file=sys.stderr)
                return 1
            return 0
        text = args.readme.read_text()
        fresh = render(text, args.data_dir)
        if fresh != text:
            args.readme.write_text(fresh)
            print(f"updated {args.readme}")
        return 0
    except FiguresError as exc:
        print(f"readme_figures: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
