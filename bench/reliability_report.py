"""docs/benchmarks/reliability.md from the JSON bench/reliability.py writes (every sentence from the numbers)."""

from __future__ import annotations

from typing import Any


def _campaign(c: dict[str, Any]) -> list[str]:
    lines = [
        "## Adversarial campaign over ROS",
        "",
        f"Judge: bench/reliability_checker.py, limits read from `{c['urdf']}` by its own parser; acceleration "
        f"limits (not in URDFs) are Franka's published {c['acceleration_limits_rad_s2']} rad/s². Rules: finite, "
        "position limits (position interface: the target; velocity interface: the position the commands imply), "
        "velocity limit, per-tick change within a_max·T relative to the previous published command (a stop is "
        "exempt, as docs/safety.md says; stops from speed are counted as abrupt stops).",
        "",
        "| interface / trigger | adversarial inputs | messages sent | msg/s (× control rate) | commands checked "
        "| unsafe | by rule | abrupt stops |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in c["runs"]:
        ratio = r["input_rate_hz"] / r["control_hz"] if r["control_hz"] else float("nan")
        lines.append(
            f"| {r['interface']} / {r['trigger']} | {r['adversarial_inputs']} | {r['messages_sent']} | "
            f"{r['input_rate_hz']:.0f} ({ratio:.0f}×) | {r['commands_checked']} | {r['unsafe_commands']} | "
            f"{r['unsafe_by_rule'] or '-'} | {r['abrupt_stops']} |"
        )
    lines += [
        "",
        f"In all: {c['adversarial_inputs']} adversarial inputs, {c['commands_checked']} published commands checked, "
        f"{c['unsafe_commands']} unsafe.",
        "",
        "Caveat (position interface): the acceleration rule is per tick with the nominal period T; the node bounds "
        "the real-time acceleration with dt = min(elapsed, T). When ticks have unequal lengths (the unpaced flood "
        "in the joint_states trigger mode, timer jitter) the per-tick second difference can exceed a·T² while the "
        "real-time acceleration stays within a: such counts break the issue's per-tick rule and are reported as "
        "such, not proven over the real-time limit. The velocity interface's per-tick rules are implied by the "
        "node's (dt ≤ T), so a count there is a real violation.",
    ]
    bad = [
        (r["interface"], r["trigger"], case, v)
        for r in c["runs"]
        for case, v in r["cases"].items()
        if v["unsafe_commands"]
    ]
    if bad:
        lines += ["", "Cases that produced unsafe commands:", ""]
        lines += [
            f"* {i} / {t}, `{case}`: {v['unsafe_commands']} of {v['commands_checked']} commands ({v['unsafe_by_rule']})"
            for i, t, case, v in bad
        ]
        examples = [e for r in c["runs"] for e in r["examples"]][:5]
        if examples:
            lines += ["", "First examples (command, excess):", ""]
            for e in examples:
                extra = {k: round(v, 3) for k, v in e.items() if k.endswith(("_ratio", "_rad"))}
                lines.append(f"* `{e['case']}` {e['rules']}: {extra}")
    silent = [
        (r["interface"], r["trigger"], case)
        for r in c["runs"]
        for case, v in r["cases"].items()
        if v["commands_checked"] == 0
    ]
    if silent:
        lines += ["", "Cases during which the node published no command at all (silence, not a hold):", ""]
        lines += [f"* {i} / {t}, `{case}`" for i, t, case in silent]
    return lines


def _kills(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## kill -9 matrix",
        "",
        "`robot-rl deploy launch/sim_deploy.launch.xml` (Panda reach, recording on), SIGKILL one process after the "
        "robot moved. Hold = kill → the last joint state that still moved (> 1e-4 rad) on `/joint_states`. Data "
        "lost = kill time − newest step readable from the episode files (finished or `.partial`).",
        "",
        "| killed | hold s (bound) | held in time | how | drift after kill rad | data lost s | alive after 8 s "
        "| deploy exit | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in rows:
        if "error" in k:
            lines.append(f"| {k['case']} | error: {k['error'][:120]} | | | | | | | |")
            continue
        lines.append(
            f"| {k['case']} | {k['hold_s']} ({k.get('hold_bound_s')}) | {'yes' if k.get('held_in_time') else 'NO'} "
            f"| {k['hold_how']} | {k.get('drift_after_kill_rad', '-')} | {k['data_lost_s']} | "
            f"{', '.join(k['alive_after_8s']) or '-'} | {k['deploy_exit_code']} | {k.get('note', '')} |"
        )
    return lines


def _tamper(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Tamper matrix",
        "",
        "Each tampered bundle configured by an in-process policy node (the first line of its reason).",
        "",
        "| case | outcome | expected | reason |",
        "|---|---|---|---|",
    ]
    for t in rows:
        mark = t["outcome"] if t["outcome"] == t["expected"] else f"**{t['outcome']}** (unexpected)"
        reason = t["reason"].replace("|", "\\|")
        lines.append(f"| {t['case']} | {mark} | {t['expected']} | {reason[:220]} |")
    return lines


def render(data: dict[str, Any]) -> str:
    lines = [
        "# Reliability: adversarial inputs, kill -9, tampered bundles",
        "",
        "```",
        data["command"],
        "```",
        "",
        f"Machine: {data['machine']}, Python {data['python']}; load average after {data['load_avg_after']}; "
        f"whole run {data['wall_s']} s.",
        "",
        "## Targets",
        "",
        "| target | met | measured |",
        "|---|---|---|",
    ]
    for name, v in data["verdicts"].items():
        lines.append(f"| {name} | {'met' if v['met'] else 'MISSED'} | {v['detail']} |")
    if data["campaign"] is not None:
        lines += ["", *_campaign(data["campaign"])]
    if data["kill_matrix"]:
        lines += ["", *_kills(data["kill_matrix"])]
    if data["tamper_matrix"]:
        lines += ["", *_tamper(data["tamper_matrix"])]
    return "\n".join(lines) + "\n"
