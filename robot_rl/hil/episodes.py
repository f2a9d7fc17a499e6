"""Streamed steps → training `Episode`s, by the same rules as a recorded episode file.

The learner receives the policy node's `StepRecord`s one message at a time. It groups them per node run and
episode and, when an episode ends (its last step carries `terminated`/`truncated`, a later episode's step
arrives, or the node restarted), turns the group into the in-memory form of a recording (`Recording`) and reads it
with `recording_episodes`: the one place that decides what a recorded tick becomes (executed actions, the sum of
the reward terms, a cut at a step gap or a non-finite observation, a terminated last step kept, a truncated one's
missing next observation dropped). So the transitions the learner trains on are exactly the ones
`robot-rl dataset mcap` builds from the same run's recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_rl.data.datasets.episode import Episode
from robot_rl.data.datasets.sources.mcap import recording_episodes
from robot_rl.data.episode_record import Recording
from robot_rl.data.step_record import StepRecord
from robot_rl.hil.wire import EpisodeEndInfo


@dataclass
class _Open:
    run_id: str
    episode: int
    records: list[StepRecord] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    end: EpisodeEndInfo | None = None
    bundle_sha256: str = ""
    bundle_changed: bool = False


@dataclass(frozen=True)
class AssembledEpisode:
    """The training episodes of one streamed episode, with where they came from."""

    run_id: str
    """The policy node run that executed it."""
    episode: int
    """The node's episode index."""
    episodes: tuple[Episode, ...]
    """Its training episodes (more than one where a lost step or a non-finite observation cut it; none when
    nothing usable arrived)."""
    steps: int
    """Steps received for it."""
    success: bool
    """The task succeeded: the end record's `is_success` when the end arrived with its last step, else the latest
    success signal among the received steps (the last one's `is_success`)."""
    complete: bool
    """Its last step (with the end flag) arrived; False for an episode closed by a restart or a later episode."""
    bundle_sha256: str = ""
    """The bundle that ran it (its steps' `bundle_sha256`); "" when unknown, or when it changed mid-episode (a
    bug upstream: the node swaps bundles only at episode boundaries; counted in `bundle_changed`)."""


class EpisodeAssembler:
    """Group streamed steps per (node run, episode); `add` returns the episodes that closed."""

    def __init__(self) -> None:
        self._open: _Open | None = None
        self.closed_incomplete = 0
        """Episodes closed without their last step (the node restarted, or the end was lost)."""
        self.bundle_changed = 0
        """Episodes whose steps named more than one bundle (a bug upstream: swaps happen between episodes)."""

    def add(
        self,
        run_id: str,
        episode: int,
        record: StepRecord,
        metadata: dict[str, str] | None = None,
        *,
        end: EpisodeEndInfo | None = None,
        bundle_sha256: str = "",
    ) -> list[AssembledEpisode]:
        """One step of node run `run_id`, episode `episode` (in stream order; a late step of a closed episode is
        dropped by the caller's sequence check); `end` is the end record that came with it (its episode's last
        step), `bundle_sha256` the bundle that ran it."""
        out: list[AssembledEpisode] = []
        cur = self._open
        if cur is not None and (cur.run_id, cur.episode) != (run_id, episode):
            out.append(self._close(complete=False))
        if self._open is None:
            self._open = _Open(run_id, episode, metadata=dict(metadata or {}), bundle_sha256=bundle_sha256)
        elif bundle_sha256 != self._open.bundle_sha256:
            self._open.bundle_changed = True
        self._open.records.append(record)
        if end is not None:
            self._open.end = end
        if record.terminated or record.truncated:
            out.append(self._close(complete=True))
        return out

    def flush(self) -> list[AssembledEpisode]:
        """Close the open episode, if any (the stream ended)."""
        return [self._close(complete=False)] if self._open is not None else []

    def _close(self, complete: bool) -> AssembledEpisode:
        cur = self._open
        assert cur is not None
        self._open = None
        if not complete:
            self.closed_incomplete += 1
        if cur.bundle_changed:
            self.bundle_changed += 1
        recs = cur.records
        # The end record is what the recorder stores as the episode's success; the steps' signal only stands in
        # for it when the end never arrived.
        success = bool(cur.end.is_success) if cur.end is not None else bool(recs and recs[-1].is_success)
        rec = to_recording(recs, {**cur.metadata, "is_success": str(success).lower()}, f"{cur.run_id}/{cur.episode}")
        return AssembledEpisode(
            cur.run_id,
            cur.episode,
            tuple(recording_episodes(rec)),
            len(recs),
            success,
            complete,
            "" if cur.bundle_changed else cur.bundle_sha256,
        )


def to_recording(records: list[StepRecord], metadata: dict[str, str], name: str) -> Recording:
    """`records` stacked as the reader stacks a recorded file (terms missing on a step are NaN, as there)."""
    terms = sorted({k for r in records for k in r.reward_terms})
    return Recording(
        path=Path(name),
        metadata=dict(metadata),
        steps=np.array([r.step for r in records], np.int64),
        stamps_ns=np.array([r.stamp_ns for r in records], np.int64),
        observations=np.array([r.observation for r in records], np.float64),
        policy_actions=np.array([r.policy_action for r in records], np.float64),
        executed_actions=np.array([r.executed_action for r in records], np.float64),
        rewards={k: np.array([r.reward_terms.get(k, np.nan) for r in records], np.float64) for k in terms},
        intervention=np.array([r.intervention for r in records], np.bool_),
        terminated=np.array([r.terminated for r in records], np.bool_),
        truncated=np.array([r.truncated for r in records], np.bool_),
        safety_reasons=[tuple(r.safety_reasons) for r in records],
        recovered=False,
    )
