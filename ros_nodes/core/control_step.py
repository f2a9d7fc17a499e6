"""The policy node's control step, free of ROS: observation → policy (chunked) → arbiter → safety chain → command.

The node only moves data between topics and this object, so every behaviour of the deployed loop (holds, e-stop,
human takeover, chunk re-planning, reward hooks) is tested here with a fake clock. The observation history (T_o)
is kept here (`ObservationHistory`); which chunk element runs at a tick, and whether chunks are planned on the tick
or on a worker thread, is the `ChunkExecutor`'s. Every tick's action, whichever chunk it came from, goes through
the safety chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from robot_rl.core.robot import CommandInterface
from robot_rl.data.step_record import StepRecord
from robot_rl.safety import Arbiter, SafetyChain
from robot_rl.safety.links.lyapunov import LyapunovLink
from ros_nodes.core.chunk_executor import ChunkAction, ChunkExecutionConfig, ChunkExecutor, ChunkPolicy, ChunkStats
from ros_nodes.core.node_health import StabilityHealth
from ros_nodes.core.obs_history import ObservationHistory
from ros_nodes.core.observations import ObservationAssembler
from ros_nodes.core.reward_hooks import RewardHooks

F64 = npt.NDArray[np.float64]

LyapunovFn = Callable[[npt.NDArray[np.float32], F64], float]
"""(observation [O], physical command [A]) → the bundle's Lyapunov critic L(s, a) (`OnnxPolicy.lyapunov_value`)."""

__all__ = ["ChunkExecutionConfig", "ChunkPolicy", "ControlStep", "HumanInput", "OnnxChunkPolicy"]


class OnnxChunkPolicy:
    """An `OnnxPolicy` as a `ChunkPolicy`: the bundle already returns the physical command (plain bundles through
    `act`, as always; chunked, history or sampler bundles through `plan(history) -> [H, A]`, whose noise the bundle
    draws from its own seeded generator)."""

    def __init__(self, policy: Any) -> None:
        spec = policy.spec
        self.policy = policy
        self.chunk_size = int(spec.chunk_size)
        """H."""
        self.execution_horizon = int(spec.execution_horizon)
        """H_a (0 = the whole chunk)."""
        self.obs_history = int(spec.obs_history)
        """T_o."""
        # A sampler (noise input) plans through `plan` even at H = 1, where its `act` would keep a history of its own.
        sampler = getattr(policy.manifest, "noise_shape", None) is not None
        self._chunked = self.chunk_size > 1 or self.obs_history > 1 or sampler

    def reset(self) -> None:
        """A new episode: the bundle forgets its own state (a residual on a base bundle resets the base's history
        and chunk queue; nothing for other bundles, whose history the control step keeps)."""
        self.policy.reset()

    def plan(self, observation: npt.NDArray[np.float32]) -> F64:
        if not self._chunked:
            return np.asarray(self.policy.act(observation), dtype=np.float64)[None, :]
        return np.asarray(self.policy.plan(observation), dtype=np.float64)


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
        execution: ChunkExecutionConfig | None = None,
        period_s: float = 0.0,
        lyapunov: LyapunovFn | None = None,
        fallback_policy: ChunkPolicy | None = None,
    ) -> None:
        """Args:
        replan_every: steps executed from each chunk before the next is due (0 = the policy's
            `execution_horizon` H_a, or the whole chunk when that is 0 or absent).
        execution: receding horizon or temporal ensembling, synchronous or asynchronous planning (None = receding
            horizon planned on the tick).
        period_s: control period, the time between a chunk's elements (0 = the chain's `control_period_s`).
        lyapunov: the bundle's Lyapunov critic, fed to the chain's `lyapunov` monitor link every tick the policy
            drives; required exactly when the chain has that link.
        fallback_policy: what the monitor switches to when it trips with `on_violation: fallback` (same chunk size
            and history length as `policy`).

        Raises:
            ValueError: a `lyapunov` link without a critic (or the reverse), or `fallback` without a fallback policy.
        """
        if not 0 <= replan_every <= policy.chunk_size:
            raise ValueError(f"replan_every must be in [0, chunk_size={policy.chunk_size}], got {replan_every}")
        self.assembler = assembler
        self.command = command
        """What the actions drive (joints in action order, ros2_control interface): the bundle's own record."""
        self.chain = chain
        self.arbiter = arbiter or Arbiter()
        self.hooks = hooks or RewardHooks([])
        self.replan_every = replan_every or int(getattr(policy, "execution_horizon", 0)) or policy.chunk_size
        """H_a in force: elements executed from each chunk before the next one is due."""
        self.n_act = command.dim
        self.history = ObservationHistory(int(getattr(policy, "obs_history", 1)))
        """The last T_o observations, what the policy plans from."""
        self.executor = ChunkExecutor(
            policy,
            self.n_act,
            period_s=period_s or chain.config.control_period_s,
            horizon=self.replan_every,
            config=execution or ChunkExecutionConfig(),
        )
        self.step = 0
        self.monitor: LyapunovLink | None = next((k for k in chain.links if isinstance(k, LyapunovLink)), None)
        """The chain's Lyapunov monitor link, if it has one."""
        if (self.monitor is None) != (lyapunov is None):
            raise ValueError(
                "the safety chain's 'lyapunov' link needs the bundle's Lyapunov critic (a bundle exported with one)"
                if lyapunov is None
                else "a Lyapunov critic was given but the safety chain has no 'lyapunov' link to judge it"
            )
        if self.monitor is not None and self.monitor.monitor.on_violation == "fallback" and fallback_policy is None:
            raise ValueError("the Lyapunov monitor's on_violation 'fallback' needs a fallback policy")
        if fallback_policy is not None:
            shapes = [(int(p.chunk_size), int(getattr(p, "obs_history", 1))) for p in (policy, fallback_policy)]
            if shapes[0] != shapes[1]:
                raise ValueError(
                    f"the fallback policy's (chunk_size, obs_history) {shapes[1]} differ from the policy's {shapes[0]}"
                )
        self._lyapunov = lyapunov
        self._fallback = fallback_policy
        self.lyapunov_errors = 0
        """Ticks on which the critic raised or returned a non-number (each also counts as a failed tick)."""
        self.fell_back = False
        self._rearm_on_fresh: bool | None = None  # re-arm the chain at the episode's first fresh reading (reanchor?)
        """The monitor switched to the fallback policy (kept across episodes: the bundle was judged unstable)."""

    def reset(self, *, reanchor: bool = False, fresh_since_s: float | None = None) -> None:
        """Start an episode: forget the current chunk and edges, re-arm the chain (see `SafetyChain.reset`: rate
        limits stay relative to the last command sent unless `reanchor`, the robot having re-initialized itself).
        With `fresh_since_s` (node clock), the policy is not queried until every observation source has a message
        that arrived after it (`ObservationAssembler.require_fresh`): the robot's re-initialized state, not the
        previous episode's, starts the observation history."""
        self.step = 0
        self.assembler.require_fresh(fresh_since_s)
        self.history.reset()
        self.executor.reset()
        self.arbiter.reset()
        self.chain.reset(self.assembler.joint_positions(self.command.joints), reanchor=reanchor)
        # The readings held now are the previous episode's: the chain re-arms again, at the first fresh one, so the
        # re-initialized robot's pose is neither judged a jump from the old one nor anchored at it.
        self._rearm_on_fresh = reanchor if fresh_since_s is not None else None

    @property
    def policy(self) -> ChunkPolicy:
        """What plans the chunks; assigning another one (same chunk size and history length) drops the current
        chunks and plans with it from the next tick."""
        return self.executor.policy

    @policy.setter
    def policy(self, policy: ChunkPolicy) -> None:
        self.executor.replace_policy(policy)

    @property
    def policy_errors(self) -> int:
        """Steps on which the policy could not produce an action (a plan raised or returned a bad shape)."""
        return self.executor.policy_errors

    def chunk_stats(self) -> ChunkStats:
        """Chunk execution counters (plans, late chunks, missed actions, planning latency) for `/diagnostics`."""
        return self.executor.stats()

    def close(self) -> None:
        """Stop the planning thread, if asynchronous planning started one (the node's cleanup)."""
        self.executor.close()

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
        awaiting = self.assembler.awaiting()
        if self._rearm_on_fresh is not None and obs is not None and not awaiting:
            self.chain.reset(self.assembler.joint_positions(self.command.joints), reanchor=self._rearm_on_fresh)
            self._rearm_on_fresh = None
        # The history advances at every tick, whoever drives, so a policy given control back plans from the recent
        # past, not from observations taken before the takeover.
        history = self.history.push(obs) if obs is not None and not awaiting else None
        engaged_elsewhere = self.chain.estop_engaged or human.engaged
        if engaged_elsewhere:
            # The policy is not queried while someone else drives; its chunks are stale when control returns.
            self.executor.drop()
            chunk = ChunkAction(np.full(self.n_act, np.nan), False, "")
        elif history is None:
            self.executor.drop()
            waiting = f"observation incomplete: waiting for {list(awaiting)}"
            chunk = ChunkAction(np.full(self.n_act, np.nan), False, waiting)
        else:
            chunk = self.executor.action(now_s, history)
        policy_action = chunk.action
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
            # A chunk element is stamped with its own scheduled time, so the command watchdog checks that it runs on
            # time (how long a chunk runs open-loop is bounded by its length, H periods).
            command_stamp = chunk.stamp_s if chunk.stamp_s is not None else now_s
        else:
            command_stamp = None
        proposed = sel.command if sel.command is not None else np.full(self.n_act, np.nan)
        trip = self._judge_stability(obs, sel.source, policy_action)
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
            safety_reasons=result.reasons + ((trip,) if trip else ()),
            intervention_onset=sel.onset,
            intervention_offset=sel.offset,
            source=sel.source,
            safety_held=result.held,
            safety_changed_by=result.changed_by,
            is_success=is_success,
            replanned=chunk.replanned,
            policy_error=chunk.error,
            chunk_index=chunk.chunk_index,
            chunk_step=chunk.chunk_step,
        )
        self.step += 1
        return replace(record, reward_terms=self.hooks(record))

    def stability_health(self) -> StabilityHealth | None:
        """The Lyapunov monitor's state for `/diagnostics` (None without a `lyapunov` link)."""
        m = self.monitor
        if m is None:
            return None
        return StabilityHealth(
            fed=m.fed,
            failed_ticks=int(m.counters.get("lyapunov", 0)),
            trips=m.trips,
            critic_errors=self.lyapunov_errors,
            on_violation=m.monitor.on_violation,
            fell_back=self.fell_back,
            last_trip=m.trip_reason,
        )

    def _judge_stability(self, obs: npt.NDArray[np.float32] | None, source: str, action: F64) -> str:
        """Feed the monitor L(s_t, π(s_t)) when the policy drives and act on a trip; the trip's reason, or ""."""
        monitor, critic = self.monitor, self._lyapunov
        if monitor is None or critic is None or self.fell_back:
            return ""  # after a fallback the critic (the main bundle's) says nothing about what drives
        if source != "policy" or obs is None or not np.isfinite(action).all():
            monitor.feed(None)  # someone else drove: the policy's trajectory is broken, so is the check
            return ""
        try:
            value = float(critic(obs, action))
        except Exception:  # a failing critic must not stop the loop; it counts as a failed tick
            self.lyapunov_errors += 1
            value = float("nan")
        if not monitor.feed(value):
            return ""
        what = monitor.monitor.on_violation
        if what == "estop":
            self.chain.engage_estop(monitor.trip_reason)
        elif what == "fallback" and self._fallback is not None and not self.fell_back:
            self.executor.replace_policy(self._fallback)
            self.fell_back = True
        return monitor.trip_reason
