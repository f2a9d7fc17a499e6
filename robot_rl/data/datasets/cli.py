"""`robot-rl dataset expert|rollout|mcap`: build a Minari training dataset from one source;
`robot-rl dataset lerobot`: export a Minari dataset or an MCAP recording folder as a LeRobotDataset v3.0.

One frozen config dataclass per source (tyro turns each field's docstring into its flag's help); every command
shows a progress bar and ends with a one-line summary.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import tyro

from robot_rl.core.specs import PolicySpec
from robot_rl.data.datasets.episode import DatasetSummary, Episode

if TYPE_CHECKING:
    from robot_rl.data.datasets.sources.mcap import McapReport

USAGE = """usage: robot-rl dataset <source> --out DIR [options]

sources:
  expert    N seeded scripted-expert episodes of a sim task      (robot-rl dataset expert --help)
  rollout   N seeded rollouts of an exported bundle              (robot-rl dataset rollout --help)
  mcap      a folder of recorded MCAP episodes (the policy node's record_dir)   (robot-rl dataset mcap --help)

export:
  lerobot   a Minari dataset or an MCAP folder as a LeRobotDataset v3.0   (robot-rl dataset lerobot --help)

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


@dataclass(frozen=True)
class LeRobotArgs:
    """Export episodes as a LeRobotDataset v3.0 (Parquet frames + meta/; executed physical actions, with the
    policy's own action, intervention and safety flags and terminated/truncated kept as extra features)."""

    from_: Annotated[Path, tyro.conf.arg(name="from")]
    """A Minari dataset written by robot-rl dataset, or a folder of recorded episode_*.mcap files."""
    out: Path
    """Folder to create (meta/info.json, meta/episodes/, data/chunk-000/file-000.parquet, ...)."""
    task: str = ""
    """Task description of every episode ("" = the env id the data belongs to)."""
    robot_type: str = ""
    """info.json robot_type ("" = the robot of the data's policy spec)."""
    policy: Path | None = None
    """MCAP input: the bundle that was deployed, whose spec says what the recorded actions mean."""
    overwrite: bool = False
    """Replace an existing LeRobot dataset at --out."""
    progress: bool = True
    """Show a progress bar."""


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
    return "\n".join(_with_report(lines, report, args.episodes_dir))


def _with_report(lines: list[str], report: McapReport, episodes_dir: Path) -> list[str]:
    """`lines` with what reading the recordings left out: the first line gets the file counts."""
    lines[0] += f" from {report.files - len(report.skipped)} of {report.files} files"
    if report.dropped_steps:
        lines[0] += f" ({report.dropped_steps} recorded ticks had no next observation)"
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} unusable files:")
        lines += [f"  {name}: {why}" for name, why in report.skipped]
    if report.partial:
        lines.append(
            f"ignored {len(report.partial)} unfinished .partial files (robot-rl episodes {episodes_dir} --recover)"
        )
    return lines


def run_lerobot(args: LeRobotArgs) -> str:
    """`robot-rl dataset lerobot`; returns the summary (one line, plus one per skipped MCAP file)."""
    from robot_rl.data.datasets.lerobot_v3 import CODEBASE_VERSION, LeRobotV3Config, write_lerobot_v3
    from robot_rl.data.datasets.minari_io import data_path, read_dataset
    from robot_rl.data.datasets.sources.mcap import mcap_episodes
    from robot_rl.data.mcap_reader import list_episodes

    _check_out(args.out, args.overwrite)
    try:
        data_path(args.from_)
        is_minari = True
    except FileNotFoundError:
        is_minari = False
    report: McapReport | None = None
    if is_minari:
        if args.policy is not None:
            raise ValueError("--policy is for MCAP recordings; a Minari dataset carries its own policy spec")
        dataset = read_dataset(args.from_)
        spec, episodes = dataset.spec, dataset.episodes
    elif args.from_.is_dir():  # a recording folder; mcap_episodes names what is wrong with one
        tick, close = _bar(len(list_episodes(args.from_)), "file", args.progress)
        try:
            spec, episodes, report = mcap_episodes(args.from_, bundle=args.policy, progress=tick)
        finally:
            close()
    else:
        raise FileNotFoundError(f"{args.from_} is neither a dataset folder nor a folder of recorded episodes")
    overrides = {"robot_type": args.robot_type} if args.robot_type else {}
    config = LeRobotV3Config.from_spec(spec, task=args.task, **overrides)
    tick, close = _bar(len(episodes), "episode", args.progress)
    try:
        write_lerobot_v3(episodes, args.out, config, spec=spec, overwrite=args.overwrite, progress=tick)
    finally:
        close()
    lines = [f"wrote {args.out} (LeRobotDataset {CODEBASE_VERSION}): {DatasetSummary.of(episodes).line()}"]
    return "\n".join(_with_report(lines, report, args.from_) if report is not None else lines)


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
    elif source == "lerobot":
        print(run_lerobot(tyro.cli(LeRobotArgs, args=rest, prog=prog)))
    else:
        print(f"robot-rl dataset: unknown source {source!r}\n{USAGE}", file=sys.stderr)
        return 2
    return 0
