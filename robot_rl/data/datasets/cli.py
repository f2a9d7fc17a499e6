"""`robot-rl dataset expert|rollout|mcap`: build a Minari training dataset from one source.

One frozen config dataclass per source (tyro turns each field's docstring into its flag's help); every command
shows a progress bar and ends with a one-line summary.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tyro

from robot_rl.core.specs import PolicySpec
from robot_rl.data.datasets.episode import DatasetSummary, Episode

USAGE = """usage: robot-rl dataset <source> --out DIR [options]

sources:
  expert    N seeded scripted-expert episodes of a sim task      (robot-rl dataset expert --help)
  rollout   N seeded rollouts of an exported bundle              (robot-rl dataset rollout --help)
  mcap      a folder of recorded MCAP episodes (the policy node's record_dir)   (robot-rl dataset mcap --help)

The dataset is a Minari dataset (arrow backend) with physical actions; docs/datasets.md says how to read it.
"""


@dataclass(frozen=True, kw_only=True)
class _OutputArgs:
    """What every source writes, and how (kw_only: subclasses add required fields after these defaults)."""

    out: Path
    """Dataset folder to create (Minari layout: <out>/data/...)."""
    dataset_id: str = ""
    """Minari dataset id ("" = robot_rl/<out folder name>, with -v0 added when it has no version)."""
    overwrite: bool = False
    """Replace an existing dataset at --out."""
    progress: bool = True
    """Show a progress bar."""


@dataclass(frozen=True, kw_only=True)
class _SeededArgs(_OutputArgs):
    """Seeded episodes run in simulation."""

    episodes: int = 20
    """Number of episodes."""
    seed: int = 0
    """Seed of episode 0 (episode i is reset with seed + i)."""
    max_steps: int = 0
    """Episode length cap in steps (0 = the env's own time limit)."""


@dataclass(frozen=True, kw_only=True)
class ExpertArgs(_SeededArgs):
    """Record seeded episodes of a simulation task's scripted expert."""

    env: str = "robot_rl/PandaReach-v0"
    """Suite (robot_rl/*) or Meta-World (robot_rl/MetaWorld-*) env id."""
    backend: str = ""
    """Physics engine of a suite env ("mujoco" or "pybullet"; "" = its default)."""


@dataclass(frozen=True, kw_only=True)
class RolloutArgs(_SeededArgs):
    """Record seeded rollouts of an exported policy bundle in simulation."""

    policy: Path
    """Bundle directory (policy.onnx + manifest.json) written by robot-rl export."""
    env: str = ""
    """Gymnasium env id ("" = the env recorded in the bundle's manifest)."""
    backend: str = ""
    """Physics engine of a suite env ("" = the one the bundle was trained in)."""


@dataclass(frozen=True, kw_only=True)
class McapArgs(_OutputArgs):
    """Turn a folder of recorded MCAP episodes into a dataset (interventions, safety activations and the policy's
    own action kept beside the executed one)."""

    episodes_dir: Path
    """Recording folder (the policy node's record_dir, holding episode_*.mcap)."""
    policy: Path | None = None
    """Bundle that was deployed, whose spec says what the recorded actions mean (default: the bundle or env the
    recordings name)."""


def _bar(total: int, unit: str, enabled: bool) -> tuple[Callable[[object], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, disable=not enabled, dynamic_ncols=True)
    return (lambda _item: bar.update(1)), bar.close


def _write(out: Path, spec: PolicySpec, episodes: list[Episode], source: str, dataset_id: str, overwrite: bool) -> str:
    from robot_rl.data.datasets.minari_io import write_dataset

    write_dataset(out, episodes, spec, source=source, dataset_id=dataset_id, overwrite=overwrite)
    return f"wrote {out}: {DatasetSummary.of(episodes).line()}"


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty --out before spending minutes on rollouts."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; choose another --out or pass --overwrite")


def run_expert(args: ExpertArgs) -> str:
    """`robot-rl dataset expert`; returns the summary line."""
    from robot_rl.data.datasets.sources.expert import SOURCE, expert_episodes

    _check_out(args.out, args.overwrite)
    tick, close = _bar(args.episodes, "episode", args.progress)
    try:
        spec, episodes = expert_episodes(
            args.env, args.episodes, args.seed, max_steps=args.max_steps, backend=args.backend, progress=tick
        )
    finally:
        close()
    return _write(args.out, spec, episodes, SOURCE, args.dataset_id, args.overwrite)


def run_rollout(args: RolloutArgs) -> str:
    """`robot-rl dataset rollout`; returns the summary line."""
    from robot_rl.data.datasets.sources.bundle_rollout import SOURCE, bundle_episodes

    _check_out(args.out, args.overwrite)
    tick, close = _bar(args.episodes, "episode", args.progress)
    try:
        spec, episodes = bundle_episodes(
            args.policy,
            args.episodes,
            args.seed,
            env_id=args.env,
            max_steps=args.max_steps,
            backend=args.backend,
            progress=tick,
        )
    finally:
        close()
    return _write(args.out, spec, episodes, SOURCE, args.dataset_id, args.overwrite)


def run_mcap(args: McapArgs) -> str:
    """`robot-rl dataset mcap`; returns the summary (one line, plus one per skipped file)."""
    from robot_rl.data.datasets.sources.mcap import SOURCE, mcap_episodes
    from robot_rl.data.mcap_reader import list_episodes

    _check_out(args.out, args.overwrite)
    total = len(list_episodes(args.episodes_dir)) if args.episodes_dir.is_dir() else 0
    tick, close = _bar(total, "file", args.progress)
    try:
        spec, episodes, report = mcap_episodes(args.episodes_dir, bundle=args.policy, progress=tick)
    finally:
        close()
    lines = [_write(args.out, spec, episodes, SOURCE, args.dataset_id, args.overwrite)]
    lines[0] += f" from {report.files - len(report.skipped)} of {report.files} files"
    if report.dropped_steps:
        lines[0] += f" ({report.dropped_steps} recorded ticks had no next observation)"
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} unusable files:")
        lines += [f"  {name}: {why}" for name, why in report.skipped]
    if report.partial:
        lines.append(
            f"ignored {len(report.partial)} unfinished .partial files (robot-rl episodes {args.episodes_dir} --recover)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """Entry point of `robot-rl dataset`; errors (ValueError, FileNotFoundError, ...) propagate to the caller."""
    args = list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    source, rest = args[0], args[1:]
    prog = f"robot-rl dataset {source}"
    if source == "expert":
        print(run_expert(tyro.cli(ExpertArgs, args=rest, prog=prog)))
    elif source == "rollout":
        print(run_rollout(tyro.cli(RolloutArgs, args=rest, prog=prog)))
    elif source == "mcap":
        print(run_mcap(tyro.cli(McapArgs, args=rest, prog=prog)))
    else:
        print(f"robot-rl dataset: unknown source {source!r}\n{USAGE}", file=sys.stderr)
        return 2
    return 0
