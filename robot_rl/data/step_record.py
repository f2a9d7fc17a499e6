"""The one per-step record of a deployed control loop (numpy only).

The policy node's control step produces a `StepRecord` every tick; reward hooks read it; the episode session sets
its `terminated`/`truncated` flags; the MCAP recorder (`robot_rl.data.mcap_writer`) writes it. One type from tick
to file, so a field added here is available everywhere at once. `robot_rl.data.episode_record` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class StepRecord:
    """One control tick as the policy node saw it (the first seven fields are what every recorder stores)."""

    step: int
    """Step index within the episode (0-based)."""
    stamp_ns: int
    """Control-tick time (ns, >= 0); stored as the MCAP log_time and publish_time."""
    observation: npt.NDArray[np.floating[Any]]
    """[O] observation the policy acted on; NaN while an observation source was still missing."""
    policy_action: npt.NDArray[np.floating[Any]]
    """[A] action the policy asked for (physical units); NaN where it failed or was not queried."""
    executed_action: npt.NDArray[np.floating[Any]]
    """[A] action actually sent after arbitration and the safety chain (physical units; finite, within bounds)."""
    reward_terms: Mapping[str, float]
    """Reward terms of this tick, e.g. {"rlif": -1.0, "success": 0.0}; the reward is their sum. Empty while the
    reward hooks run (they compute it)."""
    intervention: bool
    """True when a human (teleop) produced the executed action."""
    safety_reasons: tuple[str, ...] = ()
    """Why the safety chain changed the action this tick (empty if it let it through)."""
    terminated: bool = False
    """The task ended after this step (a terminal state: no bootstrapping from it). Set by the episode session
    when the robot reports the episode's real end; False while the hooks run."""
    truncated: bool = False
    """The episode was cut after this step (time limit, step limit, operator stop): not a terminal state."""
    intervention_onset: bool = False
    """The human took over at this step."""
    intervention_offset: bool = False
    """The human handed back at this step."""
    source: str = ""
    """Who drove: "policy", "human", "estop" or "none" ("" when unknown, e.g. a record from another writer)."""
    safety_held: bool = False
    """The safety chain substituted the hold action for the proposed command."""
    safety_changed_by: tuple[str, ...] = ()
    """Names of the safety links that changed the action, in the order they acted."""
    is_success: bool | None = None
    """Latest task-success signal (`/robot_rl/is_success`) at this tick; None if none was received."""
    replanned: bool = False
    """The policy was queried this step (a chunk boundary); with asynchronous planning, a newly planned chunk took
    over this step."""
    policy_error: str = ""
    """Why the policy produced no usable action this step ("" if it did)."""
    chunk_index: int = -1
    """Sequence number (per session) of the action chunk `policy_action` came from; with temporal ensembling the
    newest chunk that contributed (-1: no chunk, e.g. the policy was not queried or had no action)."""
    chunk_step: int = -1
    """Element of that chunk executed at this step: steps since the observation it was planned from (-1: none)."""

    @property
    def stamp_s(self) -> float:
        """`stamp_ns` in seconds."""
        return self.stamp_ns * 1e-9
