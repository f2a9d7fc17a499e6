"""The learner's side of the human-in-the-loop stream: bytes in, whole training episodes out (numpy only).

    bytes ─► wire.decode ─► SequenceTracker ─► EpisodeAssembler ─► recording_episodes ─► AssembledEpisode

- A message that does not decode (`WireError`) is counted under `malformed`, with its reason, and dropped: a bad
  message never raises into the learner's receive callback.
- Only "fresh" messages (the newest of the current run) go on; duplicates, late and stale ones are counted by the
  tracker and dropped (a late step cannot be spliced back into an episode that has moved on).
- Nothing straddles a break in the stream (a lost message, a node restart). Each message is one step, numbered
  per episode, so a loss inside an episode is a step-index gap, which `recording_episodes` cuts exactly as it cuts
  a recording that lost the same step; a lost episode end is followed by another episode's step, and a restart by
  another run's, both of which close the open episode (incomplete: its last received step has no next
  observation and is dropped, the piece before it ends truncated). Should a break ever come with consecutive step
  numbers (a sender bug), the open episode is closed there rather than joined (`forced_cuts`).
- What a step becomes (executed action, summed reward, cut at a non-finite observation, terminal step kept,
  truncated step dropped) is decided by `recording_episodes` alone, so the learner trains on exactly what
  `robot-rl dataset mcap` builds from the same run's recording.
"""

from __future__ import annotations

from robot_rl.hil.episodes import AssembledEpisode, EpisodeAssembler
from robot_rl.hil.sequence import SequenceTracker
from robot_rl.hil.wire import StreamMessage, WireError, decode


class StreamReceiver:
    """Turns received stream messages into `AssembledEpisode`s (see the module docstring).

    Args:
        obs_dim: observation size every message must have (None: fixed by the first message that decodes).
        act_dim: action size every message must have (None: fixed by the first message that decodes).
        reorder_window: see `SequenceTracker`.
    """

    def __init__(self, obs_dim: int | None, act_dim: int | None, reorder_window: int = 1024) -> None:
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.tracker = SequenceTracker(reorder_window=reorder_window)
        """The stream's sequence accounting (its counters are `sequence/*` in `stats()`)."""
        self.assembler = EpisodeAssembler()
        self.last_malformed_reason = ""
        """Why the latest malformed message was refused ("" while none was)."""
        self._last: tuple[str, int, int] | None = None  # (run_id, episode, step) of the step last assembled
        self._counts = {
            "malformed": 0,
            "steps": 0,
            "transitions": 0,
            "steps_dropped": 0,
            "episodes_complete": 0,
            "episodes_incomplete": 0,
            "forced_cuts": 0,
        }

    def push(self, data: bytes | bytearray | memoryview) -> list[AssembledEpisode]:
        """One received message; returns the episodes it closed (usually none; two when it closed the open one and
        is itself a one-step episode)."""
        try:
            msg = decode(data, obs_dim=self.obs_dim, act_dim=self.act_dim)
        except WireError as exc:
            self._counts["malformed"] += 1
            self.last_malformed_reason = exc.reason
            return []
        return self._accept(msg)

    def _accept(self, msg: StreamMessage) -> list[AssembledEpisode]:
        if self.obs_dim is None:
            self.obs_dim = int(msg.record.observation.shape[0])
        if self.act_dim is None:
            self.act_dim = int(msg.record.executed_action.shape[0])
        verdict = self.tracker.observe(msg.run_id, msg.seq)
        if not verdict.fresh:
            return []  # duplicate, late or stale: counted by the tracker
        self._counts["steps"] += 1
        out: list[AssembledEpisode] = []
        step = int(msg.record.step)
        if verdict.breaks_stream and self._last == (msg.run_id, msg.episode, step - 1):
            # Steps lost from this episode show as a step gap, which `recording_episodes` cuts; consecutive step
            # numbers across a loss mean the sender numbered them wrongly: never join them.
            self._counts["forced_cuts"] += 1
            out += self.assembler.flush()
        out += self.assembler.add(
            msg.run_id, msg.episode, msg.record, end=msg.episode_end, bundle_sha256=msg.bundle_sha256
        )
        self._last = (msg.run_id, msg.episode, step)
        return self._closed(out)

    def flush(self) -> list[AssembledEpisode]:
        """Close the open episode (contact with the node lost, learner shutting down)."""
        self._last = None
        return self._closed(self.assembler.flush())

    def stats(self) -> dict[str, int]:
        """Counters for /diagnostics: malformed, steps (fresh steps assembled), transitions and steps_dropped
        (by the recording rules: steps of closed episodes that became no transition), episodes_complete,
        episodes_incomplete, forced_cuts, bundle_changed, and the tracker's counters under `sequence/`."""
        return {
            **self._counts,
            "bundle_changed": self.assembler.bundle_changed,
            **{f"sequence/{k}": v for k, v in self.tracker.stats().items()},
        }

    def _closed(self, episodes: list[AssembledEpisode]) -> list[AssembledEpisode]:
        c = self._counts
        for a in episodes:
            n = sum(len(e) for e in a.episodes)
            c["transitions"] += n
            c["steps_dropped"] += a.steps - n
            c["episodes_complete" if a.complete else "episodes_incomplete"] += 1
        return episodes
