"""ONNX Runtime session options for the batch-1 policy call: threads, spinning, graph optimization, IO binding.

Exports the SAC-sized actor of bench/onnx_latency.py (obs 11, act 3, 2x256) with the real exporter and times one
observation through bare `InferenceSession`s on the bundle's policy.onnx. Each session starts from the options
`robot_rl.export.runtime.create_session` builds (`runtime_default`) and changes one of them; every session is
called through `session.run` and through `run_with_iobinding` on preallocated input/output OrtValues (the call
path is its own axis). `OnnxPolicy.act`, the path the robot runs, is the reference row. Every variant must return
OnnxPolicy's action (within 1e-6) before it is timed. Variants are timed in interleaved blocks, the order rotated
each round, so that load from other processes hits all of them alike. Writes onnx_options.{json,md}.

Usage:
    .venv/bin/python bench/onnx_options.py [--samples 20000] [--warmup 2000] [--rounds 10] [--out-dir docs/benchmarks]
    .venv/bin/python bench/onnx_options.py --quick              # smoke run, written under /tmp unless --out-dir
    .venv/bin/python bench/onnx_options.py --from-json docs/benchmarks/onnx_options.json   # re-render the markdown
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import onnxruntime as ort  # noqa: E402

from bench.bench_common import cpu_model, latency_summary_us  # noqa: E402
from bench.onnx_latency import OBS_DIM, POOL, TARGET_P99_US, build_policy, model_record  # noqa: E402
from robot_rl.export.manifest import Manifest, sha256_bytes  # noqa: E402
from robot_rl.export.onnx_export import export_policy  # noqa: E402
from robot_rl.export.runtime import OnnxPolicy, create_session  # noqa: E402

QUICK_OUT_DIR = Path(os.environ.get("BENCH_SCRATCH", "/tmp/robot_rl_bench")) / "onnx_options"
PARITY_ATOL = 1.0e-6
PARITY_OBS = 16
"""Observations each variant must answer like OnnxPolicy.act before it is timed."""
SPIN_KEYS = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")
DEFAULT_CALL = "iobinding"
"""The call path OnnxPolicy.act takes: the default a variant is compared with."""
REFERENCE = "OnnxPolicy.act"
CALLS = ("session_run", "iobinding")
TABLE_HEAD = (
    "| variant | call | change from runtime default | p50 µs | p99 µs | p99.9 µs | p99 per round µs "
    "| CPU mean µs (thread / process) | p99 / runtime_default |\n|---|---|---|---|---|---|---|---|---|"
)

Action = npt.NDArray[np.float32]
Call = Callable[[npt.NDArray[np.float32]], Action]


@dataclass(frozen=True)
class Change:
    """One change to the runtime's session options (none for `runtime_default`)."""

    name: str
    label: str
    """The change as it reads in the table."""
    apply: Callable[[ort.SessionOptions], None]


def _set(attr: str, value: Any) -> Callable[[ort.SessionOptions], None]:
    return lambda options: setattr(options, attr, value)


def _spin_on(options: ort.SessionOptions) -> None:
    for key in SPIN_KEYS:
        options.add_session_config_entry(key, "1")  # overwrites the runtime's "0" (onnxruntime logs a warning)


CHANGES: tuple[Change, ...] = (
    Change("runtime_default", "—", lambda options: None),
    Change("intra_op_2", "intra_op_num_threads 2", _set("intra_op_num_threads", 2)),
    Change("spinning_on", "intra/inter-op spinning on", _spin_on),
    Change(
        "opt_disable_all",
        "graph optimization DISABLE_ALL",
        _set("graph_optimization_level", ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
    ),
    Change(
        "opt_basic",
        "graph optimization ENABLE_BASIC",
        _set("graph_optimization_level", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
    ),
    Change(
        "opt_extended",
        "graph optimization ENABLE_EXTENDED",
        _set("graph_optimization_level", ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
    ),
    Change("mem_pattern_off", "enable_mem_pattern off", _set("enable_mem_pattern", False)),
    Change("cpu_mem_arena_off", "enable_cpu_mem_arena off", _set("enable_cpu_mem_arena", False)),
)


def export_bundle(bundle: Path) -> tuple[Manifest, bytes, OnnxPolicy]:
    """Export onnx_latency's benchmark policy to `bundle`: its manifest, the bytes of its graph, and the bundle
    loaded as the robot loads it."""
    manifest = export_policy(build_policy(), bundle, {"bench": "onnx_options"})
    model_bytes = (bundle / manifest.onnx_file).read_bytes()
    if sha256_bytes(model_bytes) != manifest.onnx_sha256:
        raise SystemExit("the model read back is not the one the bundle's manifest names")
    return manifest, model_bytes, OnnxPolicy.load(bundle)


def make_session(model_bytes: bytes, change: Change) -> ort.InferenceSession:
    """A session on `model_bytes` with the runtime's own options, `change` applied.

    The options come from a session `create_session` built, so a change to the runtime's settings shows up here
    without editing this file. That options object belongs to the throwaway session; the new one copies it.
    """
    runtime_session = create_session(model_bytes)
    options = runtime_session.get_session_options()
    change.apply(options)
    return ort.InferenceSession(model_bytes, sess_options=options, providers=runtime_session.get_providers())


def session_settings(session: ort.InferenceSession) -> dict[str, Any]:
    """The options a session was built with, read back from it."""
    o = session.get_session_options()
    return {
        "intra_op_num_threads": o.intra_op_num_threads,
        "inter_op_num_threads": o.inter_op_num_threads,
        "execution_mode": o.execution_mode.name,
        "graph_optimization_level": o.graph_optimization_level.name,
        "enable_mem_pattern": o.enable_mem_pattern,
        "enable_cpu_mem_arena": o.enable_cpu_mem_arena,
        **{key: o.get_session_config_entry(key) for key in SPIN_KEYS},
        "providers": session.get_providers(),
    }


def session_run_call(session: ort.InferenceSession, in_name: str, out_name: str) -> Call:
    """`session.run` on a `[1, obs_dim]` view of the observation; onnxruntime allocates the output."""

    def call(obs: npt.NDArray[np.float32]) -> Action:
        out: Action = session.run([out_name], {in_name: obs[None]})[0]
        return out

    return call


def iobinding_call(session: ort.InferenceSession, in_name: str, out_name: str, obs_dim: int, act_dim: int) -> Call:
    """`run_with_iobinding` on OrtValues bound once over preallocated arrays: the observation is copied into the
    input array in place and the action copied out of the output array (the next call overwrites it)."""
    # The OrtValues wrap these arrays' memory without copying; the closure keeps the arrays alive.
    in_buf = np.zeros((1, obs_dim), dtype=np.float32)
    out_buf = np.zeros((1, act_dim), dtype=np.float32)
    in_value, out_value = ort.OrtValue.ortvalue_from_numpy(in_buf), ort.OrtValue.ortvalue_from_numpy(out_buf)
    binding = session.io_binding()
    binding.bind_ortvalue_input(in_name, in_value)
    binding.bind_ortvalue_output(out_name, out_value)

    def call(obs: npt.NDArray[np.float32]) -> Action:
        in_buf[0] = obs
        session.run_with_iobinding(binding)
        return out_buf.copy()

    return call


@dataclass
class Variant:
    name: str
    change: Change | None
    """None for the OnnxPolicy.act reference."""
    call_path: str
    settings: dict[str, Any]
    call: Call


def build_variants(model_bytes: bytes, policy: OnnxPolicy) -> list[Variant]:
    """Every change through every call path, then OnnxPolicy.act."""
    in_name, out_name = policy.manifest.input_name, policy.manifest.output_name
    variants = []
    for change in CHANGES:
        for path in CALLS:
            session = make_session(model_bytes, change)  # one per path: the two calls share no session state
            call = (
                session_run_call(session, in_name, out_name)
                if path == "session_run"
                else iobinding_call(session, in_name, out_name, policy.obs_dim, policy.act_dim)
            )
            variants.append(Variant(f"{change.name}/{path}", change, path, session_settings(session), call))
    variants.append(Variant(REFERENCE, None, DEFAULT_CALL, session_settings(policy.session), policy.act))
    return variants


def parity_max_abs_diff(call: Call, reference: Call, observations: npt.NDArray[np.float32]) -> float:
    """Largest |call(obs) - reference(obs)| over the observations."""
    return max(float(np.max(np.abs(np.ravel(call(obs)) - np.ravel(reference(obs))))) for obs in observations)


def check_parity(
    variants: Sequence[Variant], reference: Call, observations: npt.NDArray[np.float32]
) -> dict[str, float]:
    """Each variant's worst difference from `reference`; SystemExit naming any beyond PARITY_ATOL (timing a call
    that computes something else would compare nothing)."""
    diffs = {v.name: parity_max_abs_diff(v.call, reference, observations) for v in variants}
    wrong = {name: d for name, d in diffs.items() if not d <= PARITY_ATOL}
    if wrong:
        raise SystemExit(f"variants disagree with {REFERENCE} by more than {PARITY_ATOL}: {wrong}")
    return diffs


def time_block(call: Call, pool: npt.NDArray[np.float32], start: int, n: int) -> tuple[np.ndarray, int, int]:
    """Wall latency in ns of n calls on pool rows from `start` on, and the block's CPU ns of the calling thread and
    of the whole process (the latter counts onnxruntime's worker threads, which intra_op_num_threads > 1 adds)."""
    clock = time.perf_counter_ns
    out = np.empty(n, dtype=np.int64)
    size = len(pool)
    thread0, process0 = time.thread_time_ns(), time.process_time_ns()
    for i in range(n):
        obs = pool[(start + i) % size]
        t0 = clock()
        call(obs)
        out[i] = clock() - t0
    return out, time.thread_time_ns() - thread0, time.process_time_ns() - process0


def measure(
    variants: Sequence[Variant], pool: npt.NDArray[np.float32], samples: int, warmup: int, rounds: int
) -> dict[str, dict[str, Any]]:
    """Percentiles, CPU means and per-round p50/p99 of every variant from interleaved, rotated rounds of blocks."""
    per_round = samples // rounds
    walls: dict[str, list[np.ndarray]] = {v.name: [] for v in variants}
    thread_ns = dict.fromkeys(walls, 0)
    process_ns = dict.fromkeys(walls, 0)
    for v in variants:
        time_block(v.call, pool, 0, warmup)
    gc.collect()
    for r in range(rounds):
        # Rotated so that no variant always runs right after the same neighbour or first in a round.
        order = [*variants[r % len(variants) :], *variants[: r % len(variants)]]
        for v in order:
            wall, thread, process = time_block(v.call, pool, r * per_round, per_round)
            walls[v.name].append(wall / 1e3)
            thread_ns[v.name] += thread
            process_ns[v.name] += process
    calls = per_round * rounds
    results = {}
    for name, parts in walls.items():
        res: dict[str, Any] = dict(latency_summary_us(np.concatenate(parts)))
        res["cpu_mean_us"] = round(thread_ns[name] / calls / 1e3, 2)
        res["process_cpu_mean_us"] = round(process_ns[name] / calls / 1e3, 2)
        for q in (50, 99):  # per round: a gap between variants means something only beyond this spread
            res[f"p{q}_per_round_us"] = [round(float(np.percentile(p, q)), 2) for p in parts]
        results[name] = res
    return results


def _changes_from_default(row: dict[str, Any]) -> list[str]:
    changes = [] if row["change"] == "runtime_default" else [row["change_label"]]
    return changes + ([] if row["call"] == DEFAULT_CALL else [f"call {row['call']}"])


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios to runtime_default, the fastest variants and the target verdict, from the measured rows."""
    by_name = {r["name"]: r for r in rows}
    default_name = f"runtime_default/{DEFAULT_CALL}"
    for r in rows:
        base = by_name[f"runtime_default/{r['call']}"]  # the same call path: the ratio isolates the option
        r["p99_ratio_to_runtime_default"] = round(r["p99_us"] / base["p99_us"], 3)
    default = by_name[default_name]
    candidates = [r for r in rows if r["name"] != REFERENCE]

    def best(stat: str) -> dict[str, Any]:
        row = min(candidates, key=lambda r: r[f"{stat}_us"])
        pairs = zip(row[f"{stat}_per_round_us"], default[f"{stat}_per_round_us"], strict=True)
        changes = _changes_from_default(row)
        return {
            "stat": stat,
            "name": row["name"],
            "value_us": row[f"{stat}_us"],
            "default_value_us": default[f"{stat}_us"],
            "differs_from_default": bool(changes),
            "changes": changes,
            "rounds_below_default": sum(a < b for a, b in pairs),
        }

    reference = by_name[REFERENCE]
    return {
        "default": default_name,
        "best_p99": best("p99"),
        "best_p50": best("p50"),
        "target": {
            "p99_us": reference["p99_us"],
            "target_p99_us": TARGET_P99_US,
            "met": reference["p99_us"] <= TARGET_P99_US,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Export the benchmark policy, check and time every variant, write the report (or re-render one)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help="timed calls per variant (default 20000; 200 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed calls per variant first (default 2000; 20 with --quick)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of blocks (default 10; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script works (no numbers)")
    parser.add_argument("--out-dir", type=Path, help=f"default docs/benchmarks (--quick: {QUICK_OUT_DIR})")
    parser.add_argument("--from-json", type=Path, help="re-render onnx_options.md from this JSON (no measurement)")
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir or (QUICK_OUT_DIR if args.quick else REPO_ROOT / "docs" / "benchmarks")
    if args.from_json:
        write_markdown(json.loads(args.from_json.read_text()), out_dir)
        return 0
    quick = args.quick
    samples = args.samples or (200 if quick else 20_000)
    warmup = args.warmup if args.warmup is not None else (20 if quick else 2_000)
    rounds = args.rounds or (2 if quick else 10)
    if samples < 10_000 and not quick:
        parser.error("--samples must be >= 10000 for a meaningful p99.9 (or use --quick)")
    if not 1 <= rounds <= samples:
        parser.error("--rounds must be between 1 and --samples")

    with tempfile.TemporaryDirectory(prefix="onnx-options-") as tmp:
        manifest, model_bytes, policy = export_bundle(Path(tmp) / "bundle")
    pool = np.random.default_rng(0).normal(size=(POOL, OBS_DIM)).astype(np.float32)
    variants = build_variants(model_bytes, policy)
    parity = check_parity(variants, policy.act, pool[:PARITY_OBS])

    load_before = os.getloadavg()
    results = measure(variants, pool, samples, warmup, rounds)
    load_after = os.getloadavg()

    rows = []
    for v in variants:
        rows.append(
            {
                "name": v.name,
                "change": v.change.name if v.change else REFERENCE,
                "change_label": v.change.label if v.change else "full robot path: input checks, IO binding, copy out",
                "call": v.call_path,
                "settings": v.settings,
                "parity_max_abs_diff": parity[v.name],
                **results[v.name],
            }
        )
    argv_list = list(sys.argv[1:] if argv is None else argv)
    per_round = samples // rounds
    report: dict[str, Any] = {
        "command": (".venv/bin/python bench/onnx_options.py " + " ".join(map(shlex.quote, argv_list))).strip(),
        "quick": quick,
        "config": {
            "samples_per_variant": per_round * rounds,
            "warmup_per_variant": warmup,
            "rounds": rounds,
            "pool": POOL,
            "parity_atol": PARITY_ATOL,
            "parity_observations": PARITY_OBS,
        },
        "model": model_record(manifest.onnx_sha256),
        "machine": {
            "cpu_model": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_avg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "onnxruntime": ort.__version__,
            "gc_enabled_while_timing": gc.isenabled(),
        },
        "method": (
            f"{warmup} warm-up calls per variant, then {rounds} interleaved rounds with one block of {per_round} "
            f"timed calls per variant (order rotated each round; time.perf_counter_ns around each call, CPU time "
            f"per block from time.thread_time_ns and time.process_time_ns), inputs cycled from {POOL} random "
            f"float32 observations of shape [{OBS_DIM}]"
        ),
        "variants": rows,
    }
    report.update(summarize(rows))
    # Rendered from the JSON text, so --from-json gives the same bytes.
    report = json.loads(json.dumps(report))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "onnx_options.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, out_dir)
    _print(report)
    print(f"wrote {out_dir / 'onnx_options.md'}")
    return 0


def write_markdown(report: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "onnx_options.md").write_text(render_markdown(report))


def _print(report: dict[str, Any]) -> None:
    print(f"{'variant':<38}{'p50':>8}{'p99':>8}{'p99.9':>9}{'cpu':>7}  (µs, batch 1)")
    for r in report["variants"]:
        print(f"{r['name']:<38}{r['p50_us']:>8.1f}{r['p99_us']:>8.1f}{r['p99_9_us']:>9.1f}{r['cpu_mean_us']:>7.1f}")
    print(_best_line(report, "best_p99"))
    print(_best_line(report, "best_p50"))
    print(_target_line(report))


def _best_line(report: dict[str, Any], key: str) -> str:
    b = report[key]
    head = f"Lowest {b['stat']}: `{b['name']}`, {b['value_us']:.1f} µs"
    if not b["differs_from_default"]:
        return f"{head}: the runtime's default (`{report['default']}`)."
    return (
        f"{head} against {b['default_value_us']:.1f} µs for the runtime's default `{report['default']}`; it differs "
        f"by {', '.join(b['changes'])}, and its {b['stat']} was below the default's in {b['rounds_below_default']} "
        f"of {report['config']['rounds']} rounds."
    )


def _target_line(report: dict[str, Any]) -> str:
    t = report["target"]
    verdict = "met" if t["met"] else "**missed**"
    return (
        f"Target (issue): p99 <= {t['target_p99_us']:.0f} µs through `{REFERENCE}`: {verdict} "
        f"(measured p99 {t['p99_us']:.1f} µs)."
    )


def _settings_text(settings: dict[str, Any]) -> str:
    spin = "/".join(settings[k] for k in SPIN_KEYS)
    return (
        f"intra-op {settings['intra_op_num_threads']} / inter-op {settings['inter_op_num_threads']} threads, "
        f"{settings['execution_mode']}, {settings['graph_optimization_level']}, allow_spinning intra/inter {spin}, "
        f"enable_mem_pattern {settings['enable_mem_pattern']}, enable_cpu_mem_arena "
        f"{settings['enable_cpu_mem_arena']}, providers {', '.join(settings['providers'])}"
    )


def render_markdown(report: dict[str, Any]) -> str:
    """The markdown report; every number in it comes from `report`."""
    m, cfg, rows = report["machine"], report["config"], report["variants"]
    default = next(r for r in rows if r["name"] == report["default"])
    table = "\n".join(
        "| `{name}` | {call} | {label} | {p50_us:.1f} | {p99_us:.1f} | {p99_9_us:.1f} | {lo:.1f}–{hi:.1f} "
        "| {cpu_mean_us:.1f} / {process_cpu_mean_us:.1f} | {p99_ratio_to_runtime_default:.2f} |".format(
            label=r["change_label"], lo=min(r["p99_per_round_us"]), hi=max(r["p99_per_round_us"]), **r
        )
        for r in rows
    )
    smoke = (
        "\n**Smoke run (`--quick`): the numbers below check that the script works; they measure nothing.**\n"
        if report["quick"]
        else ""
    )
    load, model = m["load_avg_1m_before_after"], report["model"]
    return f"""# ONNX Runtime session options (batch 1)

```
{report["command"]}
```
{smoke}
Machine and model:

- CPU: {m["cpu_model"]}, {m["logical_cpus"]} logical CPUs ({m["usable_cpus"]} usable); 1-minute load average
  {load[0]} before and {load[1]} after the timing
- Python {m["python"]}, numpy {m["numpy"]}, onnxruntime {m["onnxruntime"]}; garbage collector enabled while
  timing: {m["gc_enabled_while_timing"]}
- Model: SAC actor, obs_dim {model["obs_dim"]}, act_dim {model["act_dim"]}, hidden {model["hidden"]} ReLU,
  normalizer and tanh scaling in the graph, exported by `export_policy` (sha256 `{model["onnx_sha256"][:16]}…`)
- `runtime_default`: the options `robot_rl.export.runtime.create_session` builds, read back from the session:
  {_settings_text(default["settings"])}. Every other variant changes one of them.

Call paths (every variant takes the same float32 `[obs_dim]` observation and returns an action it owns):

- `session_run`: `session.run` on a `[1, obs_dim]` view of the observation; onnxruntime allocates the output.
- `iobinding`: `run_with_iobinding` on OrtValues bound once over preallocated input and output arrays
  (observation copied in, action copied out), the scheme `OnnxPolicy.act` uses.
- `{REFERENCE}`: the path the robot runs; IO binding plus its input and finiteness checks.

Every variant returned `{REFERENCE}`'s action within {cfg["parity_atol"]:g} on {cfg["parity_observations"]}
observations before it was timed.

{TABLE_HEAD}
{table}

The p99 ratio is to `runtime_default` on the same call path (`{REFERENCE}`: to `runtime_default/{DEFAULT_CALL}`).
The CPU mean of the calling thread misses work done on onnxruntime's worker threads; the process column counts it.

- {_best_line(report, "best_p99")}
- {_best_line(report, "best_p50")}
- {_target_line(report)}

Method: {report["method"]}; {cfg["samples_per_variant"]} timed calls per variant. Wall-clock percentiles on a
shared machine include time spent waiting for a core and cache pollution from other processes; a gap between
variants smaller than the round-to-round spread of p99 is not a difference.
"""


if __name__ == "__main__":
    raise SystemExit(main())
