"""Source (c): a folder of recorded MCAP episodes (the policy node's `record_dir`) as training `Episode`s.

Each recorded tick t holds the observation o_t the policy acted on, the action the policy asked for, the action
executed after the arbiter and the safety chain (the human's during an intervention), the reward terms, the
intervention flag and the safety reasons in force; the last tick carries `terminated`/`truncated`. Reading rules:

- `actions` = executed actions, `policy_actions` = the policy's own (both physical), `intervention` = the recorded
  flag, `safety_activated` = the safety chain named a reason on that tick, reward = the sum of the reward terms.
- A transition needs the next tick's observation. A terminated last tick is kept (its next observation is a copy
  of o_t: it is never bootstrapped); a truncated or crash-cut last tick has no next observation and is dropped,
  its predecessor becoming the truncated last step.
- A gap in the step indices (the recorder dropped ticks) or a non-finite observation cuts the recording into
  separate episodes, each truncated at the cut (no transition is invented across it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.core.specs import PolicySpec
from robot_rl.data.datasets.episode import Episode
from robot_rl.data.episode_record import Recording
from robot_rl.data.mcap_reader import list_episodes, read_episode

SOURCE = "mcap"


@dataclass(frozen=True)
class McapReport:
    """What reading a recording folder found besides the episodes."""

    files: int
    """Finished `episode_*.mcap` files found."""
    skipped: tuple[tuple[str, str], ...] = ()
    """(file name, reason) of every file that could not be used (corrupt, unfinished, wrong sizes)."""
    partial: tuple[str, ...] = ()
    """Unfinished `.mcap.partial` files left by a crashed writer (not read; `robot-rl episodes DIR --recover`)."""
    dropped_steps: int = 0
    """Recorded ticks that could not become transitions (no next observation, non-finite observation)."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Other remarks for the user."""


def recording_episodes(rec: Recording, name: str = "") -> list[Episode]:
    """The training episodes in one recording (several where a gap or a non-finite observation cuts it)."""
    n = len(rec)
    if n == 0:
        return []
    finite = np.all(np.isfinite(rec.observations), axis=1)
    terms = list(rec.rewards.values())
    rewards = np.nansum(np.stack(terms), axis=0) if terms else np.zeros(n)
    safety = np.array([bool(r) for r in rec.safety_reasons], np.bool_)
    success = str(rec.metadata.get("is_success", rec.metadata.get("success", "false"))).lower() == "true"
    episodes = []
    start = 0
    while start < n:
        if not finite[start]:
            start += 1
            continue
        end = start  # last row of this run of consecutive, finite ticks
        while end + 1 < n and finite[end + 1] and rec.steps[end + 1] == rec.steps[end] + 1:
            end += 1
        last_of_file = end == n - 1
        if last_of_file and bool(rec.terminated[end]):
            rows = np.arange(start, end + 1)
            obs = np.concatenate([rec.observations[rows], rec.observations[end : end + 1]])  # never bootstrapped
            terminated = True
        else:
            rows = np.arange(start, end)  # the cut tick has no next observation
            obs = rec.observations[start : end + 1]
            terminated = False
        if rows.size:
            meta: dict[str, Any] = {
                "file": name or rec.path.name,
                "first_step": int(rec.steps[start]),
                "recovered": rec.recovered,
                "recording": dict(rec.metadata),
            }
            episodes.append(
                Episode.build(
                    observations=obs,
                    actions=rec.executed_actions[rows],
                    policy_actions=rec.policy_actions[rows],
                    rewards=rewards[rows],
                    terminated=terminated,
                    truncated=not terminated,
                    intervention=rec.intervention[rows],
                    safety_activated=safety[rows],
                    success=success and last_of_file,
                    source=SOURCE,
                    metadata=meta,
                )
            )
        start = end + 1
    return episodes


def mcap_episodes(
    directory: str | Path,
    *,
    spec: PolicySpec | None = None,
    bundle: str | Path | None = None,
    progress: Callable[[Path], None] | None = None,
) -> tuple[PolicySpec, list[Episode], McapReport]:
    """Every usable episode of a recording folder, the spec its actions are stated in, and what was skipped.

    The spec is, in order: `spec`; the manifest of `bundle`; a `policy_spec` JSON in the recordings' metadata; the
    manifest of the `policy_bundle` they name; the suite env of the `env_id` they name.

    Raises:
        FileNotFoundError: `directory` does not exist.
        ValueError: no finished episode file in it, none readable, or no way to tell the spec.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory of recorded episodes")
    paths = list_episodes(directory)
    partial = tuple(sorted(p.name for p in directory.glob("episode_*.mcap.partial")))
    if not paths:
        hint = f" ({len(partial)} unfinished: robot-rl episodes {directory} --recover)" if partial else ""
        raise ValueError(f"{directory} holds no finished episode_*.mcap files{hint}")
    recordings: list[tuple[Path, Recording]] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        try:
            recordings.append((path, read_episode(path)))
        except ValueError as exc:  # corrupt or not ours: skip it, count it, say why
            skipped.append((path.name, str(exc)))
        if progress is not None:
            progress(path)
    if not recordings:
        raise ValueError(f"none of the {len(paths)} episode files in {directory} is readable: {skipped[0][1]}")
    spec = spec or _spec(bundle, [r.metadata for _, r in recordings], directory)
    episodes: list[Episode] = []
    dropped = 0
    for path, rec in recordings:
        sizes = (rec.observations.shape[1], rec.executed_actions.shape[1])
        if len(rec) and sizes != (spec.observation.dim, spec.action.dim):
            skipped.append(
                (
                    path.name,
                    f"observations of size {sizes[0]} and actions of size {sizes[1]}; the spec says "
                    f"{spec.observation.dim} and {spec.action.dim}",
                )
            )
            continue
        eps = recording_episodes(rec, path.name)
        dropped += len(rec) - sum(len(e) for e in eps)  # each transition is one recorded tick
        episodes.extend(eps)
    if not episodes:
        raise ValueError(f"no usable steps in {directory}: {len(skipped)} files skipped, the rest too short")
    return spec, episodes, McapReport(files=len(paths), skipped=tuple(skipped), partial=partial, dropped_steps=dropped)


def _spec(bundle: str | Path | None, metas: list[Mapping[str, str]], directory: Path) -> PolicySpec:
    from robot_rl.export.manifest import read_manifest

    if bundle is not None:
        return read_manifest(bundle).policy_spec
    for meta in metas:
        if meta.get("policy_spec"):
            return PolicySpec.from_json(json.loads(meta["policy_spec"]))
    for meta in metas:
        recorded = meta.get("policy_bundle", "")
        if recorded and (Path(recorded) / "manifest.json").is_file():
            return read_manifest(recorded).policy_spec
    for meta in metas:
        env_id = meta.get("env_id", "")
        if env_id.startswith("robot_rl/"):
            from robot_rl.train.envs import make_env, policy_spec_for

            env = make_env(env_id)
            try:
                return policy_spec_for(env, env_id)
            finally:
                env.close()
    raise ValueError(
        f"cannot tell what the actions recorded in {directory} mean: their metadata names no readable policy "
        "bundle or suite env; pass --policy BUNDLE (the bundle that was deployed)"
    )
