"""The safety chain's unchanged-command fast path: this checkout against an earlier revision, side by side.

Issue 10 rebuilt the chain from a fixed sequence into `Link` parts and asked that commands the chain passes
unchanged stay as fast as before. This script checks the earlier revision out into a temporary git worktree, runs
its `bench/safety_chain.py` and this checkout's, alternating, `--rounds` times each in the same session (same
machine, same load), and compares the chain with the stub forward kinematics — the configuration both revisions
time — on the steps it passed unchanged and on all steps. Medians over rounds; the ratio is this / base.

    .venv/bin/python bench/safety_chain_ab.py --base-rev 02404fb
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# (label, key in the base revision's JSON, key in this checkout's JSON): the stub-FK chain, which both time.
SERIES = (
    ("unchanged", "chain_unchanged_steps", "stub_fk_chain_unchanged_steps"),
    ("all", "chain", "stub_fk_chain"),
)


def _run(root: Path, out_dir: Path, samples: int) -> dict[str, Any]:
    """One run of `root`'s bench/safety_chain.py with `root` first on the path (its own robot_rl)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "bench/safety_chain.py", "--samples", str(samples), "--out-dir", str(out_dir)]
    subprocess.run(cmd, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    data: dict[str, Any] = json.loads((out_dir / "safety_chain.json").read_text())
    return data


def _render(report: dict[str, Any]) -> str:
    rows = [
        f"| {s['series']} | {s['base_p50_us']} | {s['this_p50_us']} | x{s['ratio_p50']} | {s['base_p99_us']} | "
        f"{s['this_p99_us']} | x{s['ratio_p99']} |"
        for s in report["series"]
    ]
    unchanged = next(s for s in report["series"] if s["series"] == "unchanged")
    slower = unchanged["ratio_p50"] > 1.0
    verdict = (
        f"The unchanged-command fast path is {abs(unchanged['this_p50_us'] - unchanged['base_p50_us']):.1f} µs "
        f"{'slower' if slower else 'faster'} at p50 (x{unchanged['ratio_p50']}) than at `{report['base_rev']}`; "
        f"run-to-run spread of the base's p50 over the rounds: {report['base_unchanged_p50_spread_us']} µs."
    )
    return "\n".join(
        [
            "# Safety chain fast path: this checkout vs an earlier revision",
            "",
            "```",
            report["command"],
            "```",
            "",
            f"Base revision `{report['base_rev']}` (the fixed-sequence chain) and this checkout (the chain built from "
            f"`Link` parts), each running its own `bench/safety_chain.py` ({report['samples']} timed steps), "
            f"alternating, {report['rounds']} rounds each, in one session on {report['machine']}. Both time the "
            "same workload with the stub forward kinematics; medians over rounds, µs per step.",
            "",
            "| steps | base p50 | this p50 | this / base | base p99 | this p99 | this / base |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            verdict,
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-rev", default="02404fb", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each revision, alternating")
    parser.add_argument("--samples", type=int, default=20_000, help="timed steps per run")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base_rev], cwd=REPO_ROOT, check=True)
        try:
            for i in range(args.rounds):
                for side, root in (("base", base), ("this", REPO_ROOT)):
                    out = Path(tmp) / f"{side}-{i}"
                    out.mkdir()
                    runs[side].append(_run(root, out, args.samples))
                    print(f"round {i + 1}/{args.rounds} {side} done", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO_ROOT, check=False)
    series = []
    for label, base_key, this_key in SERIES:
        b50 = statistics.median(r[base_key]["p50_us"] for r in runs["base"])
        t50 = statistics.median(r[this_key]["p50_us"] for r in runs["this"])
        b99 = statistics.median(r[base_key]["p99_us"] for r in runs["base"])
        t99 = statistics.median(r[this_key]["p99_us"] for r in runs["this"])
        series.append(
            {
                "series": label,
                "base_p50_us": round(b50, 2),
                "this_p50_us": round(t50, 2),
                "ratio_p50": round(t50 / b50, 3),
                "base_p99_us": round(b99, 2),
                "this_p99_us": round(t99, 2),
                "ratio_p99": round(t99 / b99, 3),
            }
        )
    base_p50s = [r["chain_unchanged_steps"]["p50_us"] for r in runs["base"]]
    report = {
        "command": f".venv/bin/python bench/safety_chain_ab.py --base-rev {args.base_rev} --rounds {args.rounds}",
        "base_rev": args.base_rev,
        "rounds": args.rounds,
        "samples": args.samples,
        "machine": runs["this"][-1].get("machine", {}).get("cpu", "this machine"),
        "series": series,
        "base_unchanged_p50_spread_us": round(max(base_p50s) - min(base_p50s), 2),
        "runs": runs,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "safety_chain_ab.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out_dir / "safety_chain_ab.md").write_text(_render(report))
    print(_render(report))
    return report


if __name__ == "__main__":
    main()
