"""Episode bookkeeping of the deployed loop, free of ROS: where episodes start and end, and how each ends.

The policy node forwards its robot signals (`/robot_rl/is_success`, `/robot_rl/terminated`,
`/robot_rl/episode_done`) and its ticks here, and applies the returned events in order: write a step, end the
recorded episode, start the next. Everything that decides *when* an episode ends and *how* (terminated vs
truncated) lives here and is unit-tested with a fake clock.

Why each step is held back one tick: the robot reports the end of an episode *after* the step that ended it (it
executes the command, then finds the pole fallen or the time up), so whether tick k was the episode's last step is
known only at tick k + 1. The record of tick k is therefore written at tick k + 1, with `terminated=True` when the
robot signalled a terminal state and `truncated=True` for a time-limit or operator cut — so a learner keeps every
episode's last step (a truncated one is not a terminal state and is never bootstrapped as one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from robot_rl.data.step_record import StepRecord
from ros_nodes.core.control_step import ControlStep, HumanInput


@dataclass(frozen=True)
class EpisodeStart:
    """A new episode begins: the control step was reset; open a new recorded episode."""

    index: int
    """Episode index within this session (0-based)."""


@dataclass(frozen=True)
class EpisodeEnd:
    """The current episode ended: close the recorded episode with these flags."""

    index: int
    """Episode index within this session (0-based)."""
    steps: int
    """Control steps the episode took."""
    terminated: bool
    """The robot reported a terminal state (the task ended: success or failure)."""
    truncated: bool
    """Cut without a terminal state: time limit (robot or `max_steps`), operator, deactivate."""
    is_success: bool | None
    """Task success at the end (latest `/robot_rl/is_success`; None if none was received)."""
    intervention_steps: int
    """Steps of this episode on which a human drove."""
    ended_by: str
    """Who ended it: "robot" (`/robot_rl/episode_done`), "max_steps", "service" (`~/end_episode`) or "halt"."""

    def metadata(self) -> dict[str, str]:
        """What the recorder stores beside the flags (its end-of-episode metadata)."""
        out = {"intervention_steps": str(self.intervention_steps), "ended_by": self.ended_by}
        if self.is_success is not None:
            out["is_success"] = str(self.is_success).lower()
        return out


SessionEvent = StepRecord | EpisodeEnd | EpisodeStart
"""What the node applies, in order: write a step, close the recorded episode, open the next one."""


class EpisodeWriter(Protocol):
    """Where session events go (`robot_rl.data.mcap_writer.EpisodeRecorder` is one)."""

    def record_step(self, step: StepRecord) -> bool: ...

    def start_episode(self, metadata: Mapping[str, str], *, wait: bool = True) -> Any: ...

    def end_episode(
        self, *, terminated: bool, truncated: bool, extra: Mapping[str, str] | None = None, wait: bool = True
    ) -> Any: ...


def write_events(
    writer: EpisodeWriter, events: tuple[SessionEvent, ...], metadata: Mapping[str, str], *, wait: bool
) -> None:
    """Apply session events to a recorder in order; `metadata` opens each new episode. Inside a control tick pass
    wait=False (no fsync in the loop)."""
    for event in events:
        if isinstance(event, StepRecord):
            writer.record_step(event)
        elif isinstance(event, EpisodeEnd):
            writer.end_episode(
                terminated=event.terminated, truncated=event.truncated, extra=event.metadata(), wait=wait
            )
        else:
            writer.start_episode(metadata, wait=wait)


@dataclass(frozen=True)
class SessionTick:
    """The outcome of one tick."""

    record: StepRecord
    """This tick's record (publish `executed_action` now; it is written later, as an event)."""
    events: tuple[SessionEvent, ...]
    """Episode events to apply in order (steps to write, episode ends and starts)."""


class EpisodeSession:
    """Runs a `ControlStep` episode by episode: truncation, roll-over, intervention counts, success, end flags.

    Args:
        step: the control step to drive (reset at every episode start).
        max_steps: truncate an episode after this many steps (0 = only when the robot ends it).
    """

    def __init__(self, step: ControlStep, max_steps: int = 0, *, robot_resets_on_done: bool = False) -> None:
        """Args:
        step: the control step to drive.
        max_steps: end an episode after this many steps (0 = only when the robot ends it).
        robot_resets_on_done: the robot re-initializes itself, at rest, when it ends an episode (a simulator's
            reset): the roll-over then re-anchors the safety chain at the new episode's (plausible) reading.
            Off for a real robot, where rate limits stay relative to the last command sent.
        """
        if max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {max_steps}")
        self.step = step
        self.max_steps = max_steps
        self.robot_resets_on_done = robot_resets_on_done
        self.is_success: bool | None = None
        """Latest task-success signal of the current episode (None until one arrives)."""
        self.intervention_steps = 0
        """Steps on which a human drove, over the whole session."""
        self.episodes: list[EpisodeEnd] = []
        """Every episode that ended, in order."""
        self._open = False
        self._index = -1
        self._steps = 0
        self._episode_interventions = 0
        self._held: StepRecord | None = None
        self._done_pending = False
        self._done_arrival_s: float | None = None  # node-clock arrival of the pending `episode_done`
        self._terminal_seen = False

    @property
    def active(self) -> bool:
        """An episode is open."""
        return self._open

    @property
    def successes(self) -> list[bool]:
        """Task success of each episode that ended in normal operation (robot end or step limit), in order."""
        return [bool(e.is_success) for e in self.episodes if e.ended_by in ("robot", "max_steps")]

    # ----- robot signals (forwarded by the node) -----
    def on_success(self, success: bool) -> None:
        """`/robot_rl/is_success`."""
        self.is_success = bool(success)

    def on_terminated(self, terminated: bool) -> None:
        """`/robot_rl/terminated`: True on the step where the task reached a terminal state.

        Latched until the episode ends: it is True only on an episode's last step, and it may arrive before or
        after that step's `/robot_rl/episode_done` (separate topics are not ordered).
        """
        if terminated and self._open and self._steps > 0:
            self._terminal_seen = True

    def on_episode_done(self, arrival_s: float | None = None) -> None:
        """`/robot_rl/episode_done` (True), arrived at `arrival_s` (node clock): the robot ended the episode; it is
        closed at the next tick. When the robot re-initializes itself (`robot_resets_on_done`), the next episode's
        policy waits for observations that arrived after `arrival_s` (see `ControlStep.reset`).

        Not closed here: `/robot_rl/is_success` and `/robot_rl/terminated` of the same last step travel on their
        own topics and may be handled after this message; by the next tick they have arrived. Ignored before the
        episode's first step: it then belongs to the previous episode (already closed by the step limit).
        """
        if self._open and self._steps > 0:
            self._done_pending = True
            self._done_arrival_s = arrival_s

    # ----- episode control -----
    def begin(self) -> tuple[SessionEvent, ...]:
        """Start the first episode (the node's activate); no-op while one is open."""
        if self._open:
            return ()
        return (self._start(),)

    def finish(self, ended_by: str = "halt") -> tuple[SessionEvent, ...]:
        """End the open episode as truncated (deactivate, shutdown); its held step is written first."""
        if not self._open:
            return ()
        return tuple(self._end(terminated=False, ended_by=ended_by))

    def cut(self) -> tuple[SessionEvent, ...]:
        """End the open episode as truncated and start the next one (the `~/end_episode` service)."""
        if not self._open:
            return ()
        return (*self._end(terminated=False, ended_by="service"), self._start())

    def tick(self, now_s: float, human: HumanInput | None = None) -> SessionTick:
        """One control period: roll over if the robot ended the episode, run the step, apply the step limit.

        Raises:
            RuntimeError: no episode is open (call `begin` first).
        """
        if not self._open:
            raise RuntimeError("EpisodeSession.tick: no episode is open; call begin() first")
        events: list[SessionEvent] = []
        if self._done_pending:
            events += self._end(terminated=self._terminal_seen, ended_by="robot")
            # What arrived before the robot said "done" describes the episode that ended (robot_resets_on_done):
            # the next one is planned from fresh observations only.
            fresh_since = self._done_arrival_s if self.robot_resets_on_done else None
            events.append(self._start(reanchor=self.robot_resets_on_done, fresh_since_s=fresh_since))
        record = self.step.tick(now_s, human, self.is_success)
        self._steps += 1
        if record.intervention:
            self.intervention_steps += 1
            self._episode_interventions += 1
        if self._held is not None:
            credit: set[str] = getattr(getattr(self.step, "hooks", None), "previous_step_terms", set())
            self._held, record = _credit_previous(self._held, record, credit)
            events.append(self._held)
        self._held = record
        if self.max_steps and self._steps >= self.max_steps:
            # The node's own step limit: known now, so no need to wait for the robot.
            events += self._end(terminated=False, ended_by="max_steps")
            events.append(self._start())
        return SessionTick(record, tuple(events))

    # ----- internals -----
    def _start(self, *, reanchor: bool = False, fresh_since_s: float | None = None) -> EpisodeStart:
        self._open = True
        self._index += 1
        self._steps = 0
        self._episode_interventions = 0
        self._held = None
        self._done_pending = False
        self._terminal_seen = False
        self.is_success = None
        self._done_arrival_s = None
        self.step.reset(reanchor=reanchor, fresh_since_s=fresh_since_s)
        return EpisodeStart(self._index)

    def _end(self, *, terminated: bool, ended_by: str) -> list[SessionEvent]:
        """Write the held last step with the episode's end flags, then close it."""
        truncated = not terminated  # truncation is not termination: only the robot's terminal signal terminates
        events: list[SessionEvent] = []
        if self._held is not None:
            events.append(replace(self._held, terminated=terminated, truncated=truncated))
        end = EpisodeEnd(
            index=self._index,
            steps=self._steps,
            terminated=terminated,
            truncated=truncated,
            is_success=self.is_success,
            intervention_steps=self._episode_interventions,
            ended_by=ended_by,
        )
        self.episodes.append(end)
        events.append(end)
        self._open = False
        self._held = None
        self._done_pending = False
        return events


def _credit_previous(held: StepRecord, record: StepRecord, names: set[str]) -> tuple[StepRecord, StepRecord]:
    """Move the terms in `names` (hooks that credit the step before, RLIF's onset penalty) from `record` onto
    `held`, the previous step of the same episode: the action that led to them."""
    moved = {k: v for k, v in record.reward_terms.items() if k in names and v != 0.0}
    if not moved:
        return held, record
    held_terms = dict(held.reward_terms)
    for k, v in moved.items():
        held_terms[k] = held_terms.get(k, 0.0) + v
    here = {k: (0.0 if k in moved else v) for k, v in record.reward_terms.items()}
    return replace(held, reward_terms=held_terms), replace(record, reward_terms=here)
