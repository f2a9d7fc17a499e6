"""The policy node's side of the stream, free of ROS: episode-session events → numbered stream messages.

The episode session hands the node ordered events (a step to write, an episode end, an episode start; see
`ros_nodes/core/episode_session.py`). The same events that go to the recorder go here, so what the learner
receives is what was recorded. Each written step becomes one `StreamMessage` with the next `seq`; an episode end
that follows its last step in the same batch of events rides on that step as `episode_end`. An episode that ended
before its first step has nothing to learn from and sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol, runtime_checkable

from robot_rl.data.step_record import StepRecord
from robot_rl.hil.wire import EpisodeEndInfo, StreamMessage, new_run_id


@runtime_checkable
class EpisodeEndEvent(Protocol):
    """What the sender reads of an episode end (`ros_nodes.core.episode_session.EpisodeEnd` has these)."""

    index: int
    steps: int
    terminated: bool
    truncated: bool
    is_success: bool | None
    intervention_steps: int
    ended_by: str


@runtime_checkable
class EpisodeStartEvent(Protocol):
    """What the sender reads of an episode start (`ros_nodes.core.episode_session.EpisodeStart`)."""

    index: int


class StreamSender:
    """Numbers the steps of one policy-node run for the learner stream.

    Args:
        run_id: this run's identity (default: a fresh random one); a restarted node must use a new one.
        bundle_sha256: sha256 of the deployed ONNX model, stamped on every message ("" when unknown).
    """

    def __init__(self, run_id: str | None = None, bundle_sha256: str = "") -> None:
        self.run_id = run_id or new_run_id()
        self.bundle_sha256 = bundle_sha256
        self.next_seq = 0
        """`seq` of the next message."""
        self.episode = 0
        """Episode index stamped on steps (the session's first episode is 0)."""

    def messages(self, events: Iterable[object]) -> list[StreamMessage]:
        """The stream messages for one batch of session events, in order (steps only; ends attached)."""
        out: list[StreamMessage] = []
        for event in events:
            if isinstance(event, StepRecord):
                out.append(StreamMessage(self.run_id, self.next_seq, self.episode, self.bundle_sha256, event))
                self.next_seq += 1
            elif isinstance(event, EpisodeEndEvent):  # checked before "start": an end also has an `index`
                last = out[-1] if out else None
                # The session writes the held last step, flags set, right before its EpisodeEnd (same tick).
                if (
                    last is not None
                    and last.episode == event.index
                    and (last.record.terminated or last.record.truncated)
                ):
                    out[-1] = replace(last, episode_end=_end_info(event))
            elif isinstance(event, EpisodeStartEvent):
                self.episode = int(event.index)
        return out


def _end_info(event: EpisodeEndEvent) -> EpisodeEndInfo:
    return EpisodeEndInfo(
        steps=int(event.steps),
        terminated=bool(event.terminated),
        truncated=bool(event.truncated),
        is_success=event.is_success,
        intervention_steps=int(event.intervention_steps),
        ended_by=str(event.ended_by),
    )
