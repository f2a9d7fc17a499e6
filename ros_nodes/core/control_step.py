"""The policy node's control step, free of ROS: observation → policy (chunked) → arbiter → safety chain → command.

The node only moves data between topics and this object, so every behaviour of the deployed loop (holds, e-stop,
human takeover, chunk re-planning, reward hooks) is tested here with a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from robot_rl.core.robot import CommandInterface
from robot_rl.data.step_record import StepRecord
from robot_rl.safety import Arbiter, SafetyChain
from ros_nodes.core.observations import ObservationAssembler
from ros_nodes.core.reward_hooks import RewardHooks

F64 = npt.NDArray[np.float64]


class ChunkPolicy(Protocol):
    """A policy that returns a chunk of future actions per query (chunk 1 = an ordinary policy)."""

    chunk_size: int

    def plan(self, observation: npt.NDArray[np.float32]) -> F64:
        """Actions `[chunk_size, A]` in physical units for one flat observation.

        Raises:
            ValueError / RuntimeError: bad observation or a failed inference (the step then holds).
        """
        ...


class OnnxChunkPolicy:
    """A chunk-size-1 `OnnxPolicy` as a `ChunkPolicy`: the bundle already returns the physical command."""

    chunk_size = 1

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def plan(self, observation: npt.NDArray[np.float32]) -> F64:
        return np.asarray(self.policy.act(observation), dtype=np.float64)[None, :]


@dataclass(frozen=True)
class HumanInput:
    """The latest operator state, as the teleop topics left it."""

    engaged: bool = False
    """Dead-man held (`/teleop/engaged`): while true the policy never drives the robot."""
    command: F64 | None = None
    """Latest operator command in physical units, command order (None if none yet)."""
    stamp_s: float | None = None
    """Arrival time of `command` on the node clock."""


class ControlStep:
    """One deployed control loop: call `tick(now_s, human)` once per control period."""

    def __init__(
        self,
        policy: ChunkPolicy,
        assembler: ObservationAssembler,
        command: CommandInterface,
        chain: SafetyChain,
        *,
        arbiter: Arbiter | None = None,
        hooks: RewardHooks | None = None,
        replan_every: int = 0,
    ) -> None:
        """Args:
        replan_every: steps executed from each chunk before the policy is queried again (0 = the whole chunk).
        """
        if not 0 <= replan_every <= policy.chunk_size:
            raise ValueError(f"replan_every must be in [0, chunk_size={policy.chunk_size}], got {replan_every}")
        self.policy = policy
        self.assembler = assembler
        self.command = command
        """What the actions drive (joints in action order, ros2_control interface): the bundle's own record."""
        self.chain = chain
        self.arbiter = arbiter or Arbiter()
        self.hooks = hooks or RewardHooks([])
        self.replan_every = replan_every or policy.chunk_size
        self.n_act = command.dim
        self.policy_errors = 0
        """Steps on which the policy could not produce an action."""
        self.step = 0
        self._chunk: F64 | None = None
        self._chunk_pos = 0
        self._chunk_stamp_s: float | None = None

    def reset(self, *, reanchor: bool = False) -> None:
        """Start an episode: forget the current chunk and edges, re-arm the chain (see `SafetyChain.reset`: rate
        limits stay relative to the last command sent unless `reanchor`, the robot having re-initialized itself)."""
        self.step = 0
        self._chunk = None
        self._chunk_pos = 0
        self._chunk_stamp_s = None
        self.arbiter.reset()
        self.chain.reset(self.assembler.joint_positions(self.command.joints), reanchor=reanchor)

    def _policy_action(self, now_s: float, obs: npt.NDArray[np.float32] | None) -> tuple[F64, bool, str]:
        """The action of the current chunk, planning a new chunk on schedule; NaN (→ hold) when it cannot."""
        nan = np.full(self.n_act, np.nan)
        need_plan = self._chunk is None or self._chunk_pos >= self.replan_every
        if need_plan:
            if obs is None:
                self._chunk = None
                return nan, False, f"observation incomplete: waiting for {list(self.assembler.missing())}"
            try:
                chunk = np.asarray(self.policy.plan(obs), dtype=np.float64)
            except (ValueError, RuntimeError) as exc:
                self._chunk = None
                self.policy_errors += 1
                return nan, True, f"policy failed: {exc}"
            if chunk.ndim != 2 or chunk.shape[1] != self.n_act or chunk.shape[0] < 1:
                self._chunk = None
                self.policy_errors += 1
                return nan, True, f"policy returned shape {chunk.shape}, expected (chunk, {self.n_act})"
            self._chunk, self._chunk_pos, self._chunk_stamp_s = chunk, 0, now_s
        assert self._chunk is not None
        action = self._chunk[min(self._chunk_pos, len(self._chunk) - 1)].copy()
        self._chunk_pos += 1
        return action, need_plan, ""

    def tick(self, now_s: float, human: HumanInput | None = None, is_success: bool | None = None) -> StepRecord:
        """Run one control period and return its record (what to publish and, later, to record); never raises on
        bad data.

        Args:
            now_s: tick time on the node clock, s.
            human: the operator's latest state (None = nobody).
            is_success: the latest task-success signal, passed through to the record (and so to reward hooks).
        """
        human = human or HumanInput()
        obs = self.assembler.assemble()
        engaged_elsewhere = self.chain.estop_engaged or human.engaged
        if engaged_elsewhere:
            # The policy is not queried while someone else drives; its chunk is stale when control returns.
            policy_action, replanned, error = np.full(self.n_act, np.nan), False, ""
            self._chunk = None
        else:
            policy_action, replanned, error = self._policy_action(now_s, obs)
        sel = self.arbiter.select(
            now_s=now_s,
            policy_command=None if engaged_elsewhere else policy_action,
            human_command=human.command,
            human_stamp_s=human.stamp_s,
            human_active=human.engaged,
            estop_engaged=self.chain.estop_engaged,
        )
        if sel.source == "human":
            command_stamp = human.stamp_s
        elif sel.source == "policy":
            command_stamp = self._chunk_stamp_s if self._chunk is not None else now_s
        else:
            command_stamp = None
        proposed = sel.command if sel.command is not None else np.full(self.n_act, np.nan)
        result = self.chain.filter(
            proposed,
            now_s=now_s,
            joint_pos_rad=self.assembler.joint_positions(self.command.joints),
            joint_vel_rad_s=self.assembler.joint_velocities(self.command.joints),
            observation_stamp_s=self.assembler.oldest_arrival_s(),
            command_stamp_s=command_stamp,
            measurement_stamp_s=self.assembler.joint_state_stamp_s(),
        )
        record = StepRecord(
            step=self.step,
            # Recorders store non-negative ns; a (fake) clock before 0 s is clamped rather than lost.
            stamp_ns=max(0, round(now_s * 1e9)),
            observation=obs if obs is not None else np.full(self.assembler.layout.dim, np.nan, np.float32),
            policy_action=policy_action,
            executed_action=result.action,
            reward_terms={},
            intervention=sel.intervention,
            safety_reasons=result.reasons,
            intervention_onset=sel.onset,
            intervention_offset=sel.offset,
            source=sel.source,
            safety_held=result.held,
            safety_changed_by=result.changed_by,
            is_success=is_success,
            replanned=replanned,
            policy_error=error,
        )
        self.step += 1
        return replace(record, reward_terms=self.hooks(record))
