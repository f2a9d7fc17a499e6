"""bench/hil_push.py: its pure parts on synthetic records (the time alignment, swaps and their latency, the
interventions early vs late, the targets, the report, merging); the loop runs themselves are the benchmark."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
A, B, C = "a" * 64, "b" * 64, "c" * 64


def _bench(name: str = "hil_push") -> Any:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(f"bench.{name}")


def _report() -> Any:
    return _bench("hil_push_report")


def test_a_step_signal_is_read_on_the_grid_from_each_events_time_on() -> None:
    bench = _report()
    events = [(2.0, 0.9), (1.0, 0.5)]  # any order
    assert bench.step_function(events, 0.2, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]) == [0.2, 0.2, 0.5, 0.5, 0.9, 0.9]
    assert bench.step_function([(1.0, 0.5), (1.0, 0.7)], 0.2, [1.0]) == [0.7]  # same time: the later one
    assert bench.step_function([], 0.3, [0.0, 5.0]) == [0.3, 0.3]


def _episode(start_s: float, sha: str, origin: str = "run@1", takeovers: int = 0, success: bool = False) -> dict:
    return {
        "start_s": start_s,
        "end_s": start_s + 5.0,
        "steps": 100,
        "success": success,
        "takeovers": takeovers,
        "human_steps": 10 * takeovers,
        "sha256": sha,
        "origin": origin,
        "ended_by": "robot",
    }


def test_swaps_and_rollbacks_come_from_the_bundle_each_episode_names_and_latency_from_the_announcement() -> None:
    bench = _bench()
    t0 = 1000.0
    eps = [
        _episode(1000.0, A, "configured"),
        _episode(1005.0, A, "configured"),
        _episode(1010.0, B, "learner@500"),
        _episode(1015.0, B, "learner@500"),
        _episode(1020.0, A, "configured (rolled back to)"),
        _episode(1025.0, C, "learner@1000"),
    ]
    swaps = bench.swap_events(eps, t0)
    assert [(s["kind"], s["sha256"]) for s in swaps] == [("swap", B), ("rollback", A), ("swap", C)]
    assert swaps[0]["t_min"] == pytest.approx(10.0 / 60.0)
    # announced at 1007.5 and 1024: first ticks on them at 1010 and 1025; a rollback has no announcement
    assert bench.swap_latencies_s(swaps, {B: 1007.5, C: 1024.0}) == [2.5, 1.0]


def test_running_bundle_success_follows_swaps_and_rollbacks() -> None:
    bench = _report()
    run = {
        "base_sha256": A,
        "swaps": [
            {"t_min": 1.0, "sha256": B, "kind": "swap"},
            {"t_min": 2.0, "sha256": A, "kind": "rollback"},
            {"t_min": 3.0, "sha256": C, "kind": "swap"},
        ],
        "bundles": [{"sha256": B, "success": 0.1}, {"sha256": C, "success": 0.9}],
    }
    ev = bench.success_events(run, 0.3)
    assert ev == [(1.0, 0.1), (2.0, 0.3), (3.0, 0.9)]
    assert bench.step_function(ev, 0.3, [0.5, 1.5, 2.5, 3.5]) == [0.3, 0.1, 0.3, 0.9]


def test_interventions_are_binned_and_compared_early_vs_late() -> None:
    bench = _report()
    t = [0.1, 0.5, 1.2, 2.0, 3.5, 4.0]
    v = [2, 2, 1, 1, 0, 1]
    assert bench.binned_mean(t, v, [0.0, 1.0, 2.0, 4.0]) == [2.0, 1.0, 0.6667]  # the last bin holds 4.0
    assert bench.binned_mean(t, v, [5.0, 6.0]) == [None]
    assert bench.early_late(t, v, 4.0) == (2.0, 0.5)  # first and last quarter: [0, 1] and [3, 4]


def test_loop_parameters_keep_every_bundle_type_overrides_like_ros_and_add_the_demos() -> None:
    bench = _bench()
    overrides = [bench.parse_param("learner.updates_per_step=2"), bench.parse_param("learner.export_every_updates=300")]
    doc = bench.hil_params(overrides, demos="/data/push10")
    learner = doc["/**/learner"]["ros__parameters"]
    assert learner["keep_bundles"] == bench.BENCH_PARAMS["learner"]["keep_bundles"]
    assert learner["updates_per_step"] == 2.0 and isinstance(learner["updates_per_step"], float)
    assert learner["export_every_updates"] == 300 and learner["demos"] == ["/data/push10"]
    assert doc["/**/hil_operator"]["ros__parameters"]["engage_ticks"] == 5  # the rest of hil_sim.yaml is kept
    with pytest.raises(SystemExit, match=r"node\.name=value"):
        bench.parse_param("export_every_updates=300")


def test_the_operators_log_lines_are_counted_by_hand_back_reason() -> None:
    bench = _bench()
    lines = [
        "[hil_operator] [INFO] [1.0] [hil_operator]: taking over: drift 0.52 > 0.30 for 5 ticks",
        "[hil_operator] [INFO] [2.0] [hil_operator]: handing back after 5.00 s: max takeover 5 s",
        "[hil_operator] [INFO] [3.0] [hil_operator]: taking over: drift 0.41 > 0.30 for 5 ticks",
        "[hil_operator] [INFO] [4.0] [hil_operator]: handing back after 1.00 s: recovered: success for 5 ticks",
        "[policy_node] [INFO] [5.0] [policy_node]: swap: aaaaaaaaaaaa -> bbbbbbbbbbbb (run@100)",
    ]
    out = bench.operator_log([(float(i), line) for i, line in enumerate(lines)])
    assert out == {"takeovers": 2, "handbacks": {"max_takeover": 1, "recovered": 1}, "mean_takeover_s": 3.0}


def test_steps_lost_are_what_the_node_offered_and_the_learner_did_not_take() -> None:
    bench = _bench()
    policy = {"step_stream": {"offered": 1000, "published": 990, "dropped": 10, "errors": 0}}
    learner = {"stats": {"sequence/fresh": 985, "sequence/received": 987, "sequence/lost": 5, "malformed": 0}}
    out = bench.step_loss(policy, learner)
    assert out["lost_total"] == 15 and out["node_dropped"] == 10 and out["learner_lost"] == 5


def _run(condition: str, seed: int, final: float, early: int, late: int, minutes: float) -> dict[str, Any]:
    """A run whose one swap (at half time) brings a bundle of success `final`; takeovers `early` per episode in the
    first half, `late` in the second."""
    n = 20
    t = [minutes * (i + 0.5) / n for i in range(n)]
    return {
        "condition": condition,
        "seed": seed,
        "minutes": minutes,
        "run_s": minutes * 60.0,
        "startup_s": 10.0,
        "deploy_exit_code": 0,
        "base_sha256": A,
        "episodes": {
            "t_min": t,
            "success": [0] * (n // 2) + [1] * (n // 2),
            "takeovers": [early if x < minutes / 2 else late for x in t] if condition == "operator" else [0] * n,
            "human_steps": [50 * x for x in ([early if x < minutes / 2 else late for x in t])]
            if condition == "operator"
            else [0] * n,
            "steps": [100] * n,
            "sha256": [A[:12]] * (n // 2) + [B[:12]] * (n // 2),
        },
        "swaps": [{"t_min": minutes / 2, "sha256": B, "kind": "swap"}],
        "swap_latency_s": [4.0 + seed],
        "node_last_swap_latency_s": 4.0,
        "node_last_verify_s": 0.5,
        "node_swaps": 1,
        "node_rollbacks": 0,
        "node_refusals": 0,
        "node_last_refusal": "",
        "bundles": [{"sha256": B, "dir": "/x", "updates": 1000, "announced_min": minutes / 2 - 0.1, "success": final}],
        "steps": {"offered": 2000, "lost_total": 40, "learner_skipped_before_join": 40},
        "learner": {"updates": 1500, "updates_per_s": 1.0, "pending_updates": 3.0, "errors": 0},
        "loop": {"p50_ms": 0.5, "p99_ms": 1.5, "deadline_miss_rate": 0.0},
        "control_hz": 20.0,
        "sim_speed": {"factor": 0.99, "ticks": 1000},
        "safety": {"acceleration_limit": 100, "held": 0},
        "operator_log": {"takeovers": 3, "handbacks": {"max_takeover": 3}, "mean_takeover_s": 5.0},
        "watchdog_ticks": 0,
        "policy_errors": 0,
    }


def _data(runs: list[dict[str, Any]], minutes: float, command: str = "python bench/hil_push.py x") -> dict[str, Any]:
    return {
        "command": command,
        "env_id": "robot_rl/PandaPush-v0",
        "minutes": minutes,
        "baseline_minutes": 1.0,
        "eval_episodes": 5,
        "eval_seed": 100_000,
        "demos": True,
        "learner_params": {"algo": "residual_sac", "keep_bundles": 100_000},
        "machine": "cpu",
        "loadavg": "1.0 1.0 1.0",
        "base": {"success": 0.3, "sha256": A, "expert_episodes": 10, "updates": 5000, "eval_episodes": 5},
        "runs": runs,
        "baselines": [{"seed": 0, "loop": {"p50_ms": 0.4, "p99_ms": 1.0, "deadline_miss_rate": 0.0}}],
    }


def test_targets_are_judged_from_the_iqm_at_the_end_and_only_for_a_full_length_run() -> None:
    bench = _report()
    runs = [_run("operator", s, f, 2, 0, 30.0) for s, f in enumerate((0.8, 0.9, 0.85))]
    runs += [_run("rl_only", s, f, 0, 0, 30.0) for s, f in enumerate((0.2, 0.3, 0.4))]
    data = _data(runs, 30.0)
    summary = bench.summarize(data)
    op = summary["conditions"]["operator"]
    assert op["final_success"]["iqm"] == pytest.approx(0.85)
    assert op["success_at_min"]["7.5"]["iqm"] == pytest.approx(0.3)  # before the swap: the base
    assert op["first_reach_min"] == pytest.approx(15.0)
    assert op["takeovers_early"] == [2.0, 2.0, 2.0] and op["takeovers_late"] == [0.0, 0.0, 0.0]
    assert op["takeovers_change_iqm"] == pytest.approx(-2.0)
    assert op["human_share_early"] == [1.0, 1.0, 1.0] and op["human_share_late"] == [0.0, 0.0, 0.0]
    assert op["safety_per_tick"][0] == {"acceleration_limit": 0.1}
    assert op["base_live"] == [[0, 10]] * 3  # the first half of each run, on the base, all failed
    assert op["swap_latency_s"] == {"n": 3, "median": 5.0, "max": 6.0}
    text = "\n".join(bench.verdicts(data, summary))
    assert "`operator`: 85%" in text and "**target met**" in text
    assert "`rl_only`: 30%" in text and "**target missed**" in text
    assert "fell in 3 of 3 seed(s): **target met**" in text
    assert "inside the issue's 20%–40% band" in text and "it won 0 of 30 episodes (0%)" in text

    short = _data([_run("operator", 0, 0.9, 0, 0, 3.0)], 3.0)
    text = "\n".join(bench.verdicts(short, bench.summarize(short)))
    assert "not judged (runs of 3 min" in text and "never took over in the first quarter" in text


def test_the_report_starts_with_the_command_and_re_renders_from_its_json(tmp_path: Path) -> None:
    bench = _report()
    data = _data([_run("operator", 0, 0.9, 2, 1, 4.0), _run("rl_only", 0, 0.4, 0, 0, 4.0)], 4.0, "python bench/x")
    data["runs"][0]["load_avg_1min"] = {"mean": 9.64, "max": 13.1, "n": 60}  # a loaded machine is said so
    bench.write_report(data, tmp_path)
    md = (tmp_path / "hil_push.md").read_text()
    assert md.splitlines()[2:5] == ["```", "python bench/x", "```"]
    assert "during the runs, sampled by the harness: `operator` s0: mean 9.6, max 13.1." in md
    assert (tmp_path / "hil_push.png").stat().st_size > 0
    assert "| `operator` | 1 |" in md and "Median p99 with a learner 1.50 ms vs 1.00 ms without: 1.50x." in md
    assert "40/2000 (40 before the learner joined)" in md
    again = tmp_path / "again"
    _bench().main(["--from-json", str(tmp_path / "hil_push.json"), "--out-dir", str(again)])
    assert (again / "hil_push.md").read_text() == md


def test_shards_merge_and_refuse_a_different_base_or_a_repeated_run(tmp_path: Path) -> None:
    bench = _report()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_data([_run("operator", 0, 0.9, 2, 1, 4.0)], 4.0, "cmd a")))
    b.write_text(json.dumps(_data([_run("rl_only", 0, 0.4, 0, 0, 4.0)], 4.0, "cmd b")))
    merged = bench.merge([a, b])
    assert [(r["condition"], r["seed"]) for r in merged["runs"]] == [("operator", 0), ("rl_only", 0)]
    assert len(merged["baselines"]) == 2 and merged["command"].startswith("cmd a\ncmd b\n")
    with pytest.raises(SystemExit, match="more than one shard"):
        bench.merge([a, a])
    other = _data([_run("rl_only", 1, 0.4, 0, 0, 4.0)], 4.0)
    other["base"]["sha256"] = C
    b.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="base"):
        bench.merge([a, b])
