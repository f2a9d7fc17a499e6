"""The policy node's control step, free of ROS: observation → policy (chunked) → arbiter → safety chain → command.

The node only moves data between topics and this object, so every behaviour of the deployed loop (holds, e-stop,
human takeover, chunk re-planning, reward hooks) is tested here with a fake clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from robot_rl.core.robot import ROS2_CONTROL_INTERFACE as MANIFEST_INTERFACES
from robot_rl.safety import Arbiter, ChainResult, SafetyChain
from ros_nodes.core.observations import ObservationAssembler
from ros_nodes.core.reward_hooks import RewardHooks, StepContext

INTERFACES = MANIFEST_INTERFACES
"""sim/ action interface type → ros2_control command interface."""

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


@dataclass(frozen=True)
class ActionMapping:
    """How a bundle's raw output maps to a robot command (read from the manifest)."""

    joints: tuple[str, ...]
    """Commanded joints, in action order (= the controller's joint order)."""
    command_interface: str
    """"position", "velocity" or "effort"."""
    physical_low: tuple[float, ...] = ()
    """Physical value of a normalized action of -1, per joint; empty when the policy outputs physical units."""
    physical_high: tuple[float, ...] = ()
    """Physical value of a normalized action of +1, per joint."""

    @classmethod
    def from_manifest_extra(cls, extra: Mapping[str, Any], action_names: tuple[str, ...]) -> ActionMapping:
        """The mapping a `sim/` env recorded (`action_interface`); ValueError if the manifest lacks it."""
        iface = extra.get("action_interface")
        if not isinstance(iface, Mapping):
            raise ValueError(
                "the bundle's manifest has no action_interface (policy_spec.extra): cannot tell which "
                "ros2_control command interface its actions are for"
            )
        kind = INTERFACES.get(str(iface.get("type")))
        if kind is None:
            raise ValueError(f"unknown action interface {iface.get('type')!r}; expected one of {list(INTERFACES)}")
        joints = tuple(str(j) for j in iface.get("joints", action_names))
        return cls(
            joints=joints,
            command_interface=kind,
            physical_low=tuple(float(x) for x in iface["physical_low"]),
            physical_high=tuple(float(x) for x in iface["physical_high"]),
        )

    def to_physical(self, action: npt.ArrayLike) -> F64:
        """Physical command from the policy's output (affine map from [-1, 1]; no clipping: the chain does it)."""
        a = np.asarray(action, dtype=np.float64)
        if not self.physical_low:
            return a.copy()
        lo, hi = np.asarray(self.physical_low), np.asarray(self.physical_high)
        out: F64 = lo + (a + 1.0) * 0.5 * (hi - lo)
        return out


class OnnxChunkPolicy:
    """A chunk-size-1 `OnnxPolicy` in physical units, as a `ChunkPolicy`."""

    chunk_size = 1

    def __init__(self, policy: Any, mapping: ActionMapping) -> None:
        self.policy = policy
        self.mapping = mapping

    def plan(self, observation: npt.NDArray[np.float32]) -> F64:
        return self.mapping.to_physical(self.policy.act(observation))[None, :]


@dataclass(frozen=True)
class HumanInput:
    """The latest operator state, as the teleop topics left it."""

    engaged: bool = False
    """Dead-man held (`/teleop/engaged`): while true the policy never drives the robot."""
    command: F64 | None = None
    """Latest operator command in physical units, command order (None if none yet)."""
    stamp_s: float | None = None
    """Arrival time of `command` on the node clock."""


@dataclass(frozen=True)
class TickResult:
    """Everything one control step decided (published, recorded and reported by the node)."""

    step: int
    """Step index within the episode."""
    now_s: float
    """Tick time, s."""
    command: F64
    """What goes to the controller (finite, inside every bound)."""
    observation: npt.NDArray[np.float32] | None
    """Flat observation fed to the policy (None while a source was missing)."""
    policy_action: F64
    """The policy's action this step (physical; NaN where it failed or was not queried)."""
    source: str
    """Who drove: "policy", "human", "estop" or "none"."""
    intervention: bool
    """Human in control."""
    intervention_onset: bool
    """Human took over at this step."""
    intervention_offset: bool
    """Human handed back at this step."""
    safety: ChainResult
    """The safety chain's verdict (held, reasons, which links acted)."""
    rewards: dict[str, float] = field(default_factory=dict)
    """Reward terms from the hooks."""
    replanned: bool = False
    """The policy was queried this step (chunk boundary)."""
    policy_error: str = ""
    """Why the policy produced no usable action this step ("" if it did)."""


class ControlStep:
    """One deployed control loop: call `tick(now_s, human)` once per control period."""

    def __init__(
        self,
        policy: ChunkPolicy,
        assembler: ObservationAssembler,
        mapping: ActionMapping,
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
        self.mapping = mapping
        self.chain = chain
        self.arbiter = arbiter or Arbiter()
        self.hooks = hooks or RewardHooks([])
        self.replan_every = replan_every or policy.chunk_size
        self.n_act = len(mapping.joints)
        self.is_success: bool | None = None
        """Latest task-success signal; the node sets it from `/robot_rl/is_success`."""
        self.policy_errors = 0
        """Steps on which the policy could not produce an action."""
        self.step = 0
        self._chunk: F64 | None = None
        self._chunk_pos = 0
        self._chunk_stamp_s: float | None = None

    def reset(self) -> None:
        """Start an episode: forget the current chunk and edges, re-arm rate limits at the measured position."""
        self.step = 0
        self._chunk = None
        self._chunk_pos = 0
        self._chunk_stamp_s = None
        self.arbiter.reset()
        self.chain.reset(self.assembler.joint_positions(self.mapping.joints))

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

    def tick(self, now_s: float, human: HumanInput | None = None) -> TickResult:
        """Run one control period and return what to publish; never raises on bad data."""
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
            joint_pos_rad=self.assembler.joint_positions(self.mapping.joints),
            joint_vel_rad_s=self.assembler.joint_velocities(self.mapping.joints),
            observation_stamp_s=self.assembler.oldest_arrival_s(),
            command_stamp_s=command_stamp,
        )
        ctx = StepContext(
            step=self.step,
            now_s=now_s,
            observation=obs,
            policy_action=policy_action,
            executed_action=result.action,
            intervention=sel.intervention,
            intervention_onset=sel.onset,
            intervention_offset=sel.offset,
            safety_reasons=result.reasons,
            is_success=self.is_success,
        )
        out = TickResult(
            step=self.step,
            now_s=now_s,
            command=result.action,
            observation=obs,
            policy_action=policy_action,
            source=sel.source,
            intervention=sel.intervention,
            intervention_onset=sel.onset,
            intervention_offset=sel.offset,
            safety=result,
            rewards=self.hooks(ctx),
            replanned=replanned,
            policy_error=error,
        )
        self.step += 1
        return out
