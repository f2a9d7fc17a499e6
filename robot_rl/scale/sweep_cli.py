"""`robot-rl sweep ALGO [sweep options] [every `robot-rl train ALGO` flag]`.

The training flags are parsed exactly as `robot-rl train ALGO` parses them (the same tyro dataclasses, the same
`--recipe`), giving the base configuration every trial starts from; `--grid`/`--space` then vary it. Ray is imported
only once the command line is understood, so `--help` and bad flags need no Ray.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import tyro

from robot_rl.scale.sweep_config import SweepOptions, SweepPlan, build_plan
from robot_rl.train.config import TrainConfig

AlgoConfigT = TypeVar("AlgoConfigT")

EXECUTION_FLAGS = frozenset(
    {"--resume", "--out", "--cpus", "--address", "--max-failures", "--progress", "--no-progress", "--ray-temp-dir"}
)
"""Flags that change how a sweep runs, not what it runs: `--resume` accepts them without the plan's flags."""


@dataclass(frozen=True)
class SweepArgs(Generic[AlgoConfigT]):
    """`robot-rl sweep ALGO`: sweep options, then the base TrainConfig and algorithm config of every trial."""

    sweep: SweepOptions
    train: TrainConfig
    algo: AlgoConfigT


def _usage() -> str:
    return (
        "usage: robot-rl sweep ALGO [sweep options] [robot-rl train ALGO options]\n\n"
        "  robot-rl sweep sac --env Pendulum-v1 --seeds 0 1 2 --grid algo.critic_lr=1e-3,3e-4 --out runs/sweep1\n"
        "  robot-rl sweep sac --search random --samples 8 --space algo.critic_lr=loguniform:1e-4,1e-2 "
        "--eval-every 5000 --out runs/search1\n"
        "  robot-rl sweep sac ... --out runs/sweep1 --resume\n\n"
        "robot-rl sweep ALGO --help lists the sweep options and every training flag of ALGO; docs/scale.md explains."
    )


def _plan_flags_given(argv: list[str]) -> bool:
    """True when `argv` holds a flag that shapes the plan (anything but EXECUTION_FLAGS)."""
    return any(a.startswith("--") and a.split("=", 1)[0] not in EXECUTION_FLAGS for a in argv)


def _plan_difference(a: SweepPlan, b: SweepPlan) -> list[str]:
    da, db = a.to_json(), b.to_json()
    return [k for k in da if da[k] != db.get(k)]


def main(argv: list[str]) -> int:
    """Parse, plan, start or join Ray, run the sweep, print where the results are; 0 when every trial finished or
    was stopped early, 1 when some failed or are left to run (`--resume`)."""
    from robot_rl.cli import algo_cli_defaults

    if not argv:
        print(_usage())
        return 2
    if argv[0] in ("-h", "--help"):
        print(_usage() + "\n")
        tyro.cli(SweepOptions, args=["--help"], prog="robot-rl sweep ALGO")  # prints the options, exits 0
    algo, rest = argv[0], list(argv[1:])
    if algo.startswith("-"):
        raise ValueError(f"sweep needs an algorithm first: robot-rl sweep ALGO [options]\n{_usage()}")
    original = list(rest)
    reserved = [f.name for f in dataclasses.fields(SweepOptions)]
    entry, algo_default, recipes = algo_cli_defaults(algo, rest, reserved, "sweep")
    description = (SweepOptions.__doc__ or "").strip() + (f"\n\n{recipes}" if recipes else "")
    args = tyro.cli(
        SweepArgs[entry.config_cls],  # type: ignore[name-defined]
        args=rest,
        default=SweepArgs(SweepOptions(), TrainConfig(), algo_default),
        prog=f"robot-rl sweep {algo}",
        description=description,
        config=(tyro.conf.OmitArgPrefixes,),
    )
    opts = args.sweep

    from robot_rl.scale.ray_env import init_ray, require_ray, require_tune, shutdown_ray
    from robot_rl.scale.sweep import read_sweep, run_sweep

    require_tune()  # before any planning: a missing Ray is the first thing to hear about
    plan = build_plan(opts, algo, entry.module, args.train, args.algo, entry.config_cls)
    sweep_dir = opts.out or args.train.out_dir / f"sweep-{algo}"
    if opts.resume and (sweep_dir / "sweep.json").exists():
        saved = SweepPlan.from_json(read_sweep(sweep_dir)["plan"])
        if saved.algo != algo:
            raise ValueError(f"{sweep_dir} is a sweep of {saved.algo}, not {algo}")
        if _plan_flags_given(original) and saved.to_json() != plan.to_json():
            raise ValueError(
                f"{sweep_dir}/sweep.json holds a different sweep (differs in "
                f"{', '.join(_plan_difference(saved, plan))}); "
                "resume with the command that started it, or with only ALGO, --out and --resume"
            )
        plan = saved
    elif opts.resume:
        raise FileNotFoundError(f"--resume: {sweep_dir} holds no sweep (no sweep.json)")
    if entry.needs_dataset:  # refused here, not once per trial and retry in the workers
        online = [t.config for t in plan.trials if plan.trial_configs(t, Path("."))[0].data == "online"]
        if online:
            raise ValueError(
                f"{algo} learns from recorded data: pass --data offline --dataset DIR (or --data mixed); "
                f"configuration(s) {sorted(set(online))} train online"
            )
    if not opts.address and opts.cpus and opts.cpus < plan.cpus_per_trial:
        raise ValueError(f"--cpus {opts.cpus} is fewer than one trial needs ({plan.cpus_per_trial}, --torch-threads)")

    started_here = not require_ray().is_initialized()  # a Ray this process already runs (tests) is reused, kept
    init_ray(opts.address, num_cpus=opts.cpus or None, temp_dir=opts.ray_temp_dir)
    try:
        outcome = run_sweep(
            plan, sweep_dir, resume=opts.resume, max_failures=opts.max_failures, progress=args.train.progress
        )
    finally:
        if started_here:
            shutdown_ray()
    counts = {s: sum(1 for v in outcome.statuses.values() if v == s) for s in sorted(set(outcome.statuses.values()))}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    if args.train.progress:
        print((sweep_dir / "results.md").read_text())
    print(f"sweep {outcome.status}: {summary}; results: {sweep_dir / 'results.md'}")
    if outcome.status != "finished":
        plugin = "" if entry.module.startswith("robot_rl.") else f"--plugin {entry.module} "
        print(f"continue it with: robot-rl {plugin}sweep {algo} --out {sweep_dir} --resume")
    return 0 if outcome.status == "finished" else 1
