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
        "velocity limit, per-tick change within a_max·dt relative to the previous published command (a stop is "
        "exempt, as docs/safety.md says; stops from speed are counted as abrupt stops). Each tick is judged with "
        "its own length dt = min(time since the previous command, T), the time taken from the node's step stamps "
        "(the command message carries none) and cross-checked against the publish time: a publish more than "
        f"{c.get('clock_slack_s', 0.02):g} s after its tick's stamp is counted under clock mismatches (a tick "
        "that ran long under the flood), never silently trusted.",
        "",
        "| interface / trigger | adversarial inputs | messages sent | msg/s (× control rate) | commands checked "
        "| unsafe | by rule | abrupt stops | clock mismatches |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in c["runs"]:
        ratio = r["input_rate_hz"] / r["control_hz"] if r["control_hz"] else float("nan")
        lines.append(
            f"| {r['interface']} / {r['trigger']} | {r['adversarial_inputs']} | {r['messages_sent']} | "
            f"{r['input_rate_hz']:.0f} ({ratio:.0f}×) | {r['commands_checked']} | {r['unsafe_commands']} | "
            f"{r['unsafe_by_rule'] or '-'} | {r['abrupt_stops']} | {r.get('clock_mismatches', '-')} |"
        )
    lines += [
        "",
        f"In all: {c['adversarial_inputs']} adversarial inputs, {c['commands_checked']} published commands checked, "
        f"{c['unsafe_commands']} unsafe.",
        "",
        "Why per tick with its own length: under load ticks come unevenly (a late tick, then the on-time one 1 ms "
        "later); a target moving at a constant legal velocity over ticks of T/2 and T has a second difference of "
        "v·T/2, which a rule with the nominal T for every tick would count as an acceleration although nothing "
        "accelerates. A tick longer than T counts as T (the same step in less time: the conservative side).",
        "",
        "What an unsafe count means here: with the velocity interface the braking rule (stay able to stop before "
        "a position limit) wins over the acceleration rule when both cannot hold — when a reading shows the joint "
        "further along than the node knew, or a control tick came later than the two periods the braking room "
        "covers (the unpaced flood starves the node's control thread in the timer mode). The command then brakes "
        "harder than a_max·dt: counted here as an acceleration violation, by design never as a position-limit "
        "overrun.",
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
