"""Which action of which chunk runs at this tick: receding horizon or temporal ensembling, planned on the tick or
off it (numpy only; the control step calls `action` once per tick).

Element i of a chunk is the action for the i-th control period after the observation it was planned from. Two
ways to execute chunks:

- **receding horizon** (Diffusion Policy, Chi et al. 2023): execute the first H_a elements, then the next chunk.
- **temporal ensembling** (ACT, Zhao et al. 2023, §3.3): plan every step and execute the weighted average of
  every chunk's prediction for *now*, weights `exp(-m·i)` with i = 0 for the oldest prediction.

Synchronous planning (the default for chunk-size-1 policies, and what the node always did) plans on the tick and
counts one element per tick. **Asynchronous** planning (`PlanWorker`) is for samplers slower than the control
period: the next chunk is planned on a worker thread from the latest observation history, started when the
current chunk's remaining H_a elements cover no more than the measured planning latency plus a margin (or a
configured lead). Chunks are then aligned by time, not by tick count: the element executed at `now` is
`round((now - t_obs) / period)`, so a chunk that arrives d periods after its observation starts at element d (the
ones whose time has passed are skipped). While the next chunk is late, the current one's later elements (beyond
H_a, up to H) are still the predictions for their own times and run; past the chunk's end there is no valid
action: the tick gets NaN (the safety chain holds) and counts a missed action. An element is never executed after
its own period, and a chunk that arrives with all its elements in the past is discarded (a stale chunk).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ros_nodes.core.plan_worker import PlanResult, PlanWorker

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

MODES = ("receding", "ensemble")
"""Chunk execution modes: receding horizon (execute H_a, then replan) and ACT temporal ensembling."""


class ChunkPolicy(Protocol):
    """A policy that returns a chunk of future actions per query (chunk 1 = an ordinary policy).

    Optional attributes, read with defaults when absent: `execution_horizon` (H_a, 0 = the whole chunk),
    `obs_history` (T_o, 1 = the current observation only) and `reset()` (a new episode starts: a policy with state
    of its own between steps, such as a residual on a chunked base bundle, starts afresh).
    """

    chunk_size: int

    def plan(self, observation: F32) -> F64:
        """Actions `[chunk_size, A]` in physical units for one flat observation history `[T_o * O]`.

        Raises:
            ValueError / RuntimeError: bad observation or a failed inference (the step then holds).
        """
        ...


@dataclass(frozen=True)
class ChunkExecutionConfig:
    """How chunks are executed and planned (node parameters `chunk_execution`, `async_inference`, ...)."""

    mode: str = "receding"
    """"receding": execute each chunk's first H_a actions, then the next one; "ensemble": plan every step and
    execute the exponentially weighted average of all predictions for the current step (ACT)."""
    async_inference: bool = False
    """Plan chunked policies (chunk_size > 1) on a worker thread, so a sampler slower than the control period never
    delays a tick; chunk-size-1 policies always plan on the tick (each tick needs a fresh plan anyway). Off here (a
    bare `ControlStep` plans on the tick, as it always did); the policy node turns it on (`async_inference`)."""
    ensemble_decay: float = 0.01
    """m in the ensembling weights exp(-m·i), i = 0 for the oldest prediction (ACT's default; 0 = plain mean,
    larger = older predictions count more, i.e. smoother and slower to react)."""
    lead_steps: int = 0
    """Asynchronous receding horizon: start planning the next chunk when this many of the current chunk's H_a
    actions are left (0 = from the measured planning latency plus `margin_periods`)."""
    margin_periods: float = 1.0
    """Margin added to the measured planning latency, in control periods (absorbs jitter of the sampler)."""
    latency_window: int = 8
    """Plans over which the worst observation-to-chunk latency is kept for scheduling."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"chunk execution mode must be one of {list(MODES)}, got {self.mode!r}")
        if not (math.isfinite(self.ensemble_decay) and self.ensemble_decay >= 0):
            raise ValueError(f"ensemble_decay must be finite and >= 0, got {self.ensemble_decay}")
        if self.lead_steps < 0:
            raise ValueError(f"lead_steps must be >= 0, got {self.lead_steps}")
        if not (math.isfinite(self.margin_periods) and self.margin_periods >= 0):
            raise ValueError(f"margin_periods must be finite and >= 0, got {self.margin_periods}")
        if self.latency_window < 1:
            raise ValueError(f"latency_window must be >= 1, got {self.latency_window}")


@dataclass(frozen=True)
class ChunkAction:
    """This tick's policy action and where it came from."""

    action: F64
    """[A] physical action; NaN (the chain holds) when there is none."""
    replanned: bool
    """A chunk boundary: the policy was queried on this tick (synchronous) or a new chunk took over (asynchronous)."""
    error: str
    """Why there is no usable action ("" when there is one)."""
    chunk_index: int = -1
    """Sequence number of the chunk the action came from, per session (-1 = none); with ensembling the newest."""
    chunk_step: int = -1
    """Element of that chunk executed now (-1 = none)."""
    stamp_s: float | None = None
    """Scheduled time of that element (its observation's tick time + element × period): the command stamp."""


@dataclass(frozen=True)
class ChunkStats:
    """Counters of chunk execution for `/diagnostics` and the loop summary (whole session)."""

    mode: str
    """"receding" or "ensemble"."""
    asynchronous: bool
    """Chunks are planned on the worker thread."""
    chunk_size: int
    """H."""
    horizon: int
    """H_a in force (elements executed per chunk before the next is due)."""
    obs_history: int
    """T_o."""
    plans: int
    """Chunks planned successfully (both modes)."""
    async_plans: int
    """Of those, planned on the worker thread."""
    late_chunks: int
    """Chunks that arrived after the tick that needed them (the robot held meanwhile) or entirely in the past."""
    stale_chunks: int
    """Chunks discarded on arrival because every element's time had passed."""
    missed_actions: int
    """Ticks without a valid action because the planner was late (each one held)."""
    overrun_steps: int
    """Ticks that ran an element beyond H_a because the next chunk had not arrived yet (still on time)."""
    late_now: bool
    """The latest tick had no valid action because the planner was late."""
    last_plan_latency_s: float
    """Wall-clock time of the latest plan, s (NaN before the first)."""
    lead_steps: int
    """Asynchronous receding horizon: elements left when the next plan starts (0 = not applicable yet)."""

    def values(self) -> dict[str, str]:
        """Key/value strings for a `/diagnostics` entry (`chunk/<name>`)."""
        latency = "" if math.isnan(self.last_plan_latency_s) else f"{1e3 * self.last_plan_latency_s:.3f}"
        return {
            "chunk/mode": self.mode + (" async" if self.asynchronous else ""),
            "chunk/size": str(self.chunk_size),
            "chunk/horizon": str(self.horizon),
            "chunk/obs_history": str(self.obs_history),
            "chunk/plans": str(self.plans),
            "chunk/async_plans": str(self.async_plans),
            "chunk/late_chunks": str(self.late_chunks),
            "chunk/stale_chunks": str(self.stale_chunks),
            "chunk/missed_actions": str(self.missed_actions),
            "chunk/overrun_steps": str(self.overrun_steps),
            "chunk/last_plan_latency_ms": latency,
            "chunk/lead_steps": str(self.lead_steps),
        }

    def to_json(self) -> dict[str, Any]:
        """Plain values for the loop summary (`stats_path`)."""
        out = asdict(self)
        out["last_plan_latency_s"] = None if math.isnan(self.last_plan_latency_s) else self.last_plan_latency_s
        return out


@dataclass
class _Chunk:
    index: int
    values: F64
    t_obs_s: float
    tick: int


class ChunkExecutor:
    """Plans chunks (on the tick or on a worker) and picks this tick's action from them; see the module docstring."""

    def __init__(
        self, policy: ChunkPolicy, n_act: int, *, period_s: float, horizon: int, config: ChunkExecutionConfig
    ) -> None:
        """Args:
        policy: what plans the chunks.
        n_act: action dimension A.
        period_s: control period: the time between a chunk's consecutive elements, s.
        horizon: H_a in force, 1..chunk_size.
        config: mode, asynchronous planning and their knobs.
        """
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"period_s must be finite and > 0, got {period_s}")
        if not 1 <= horizon <= policy.chunk_size:
            raise ValueError(f"horizon must be in [1, chunk_size={policy.chunk_size}], got {horizon}")
        self.policy = policy
        self.n_act = n_act
        self.period_s = period_s
        self.horizon = horizon
        self.config = config
        self.chunk_size = int(policy.chunk_size)
        self.obs_history = int(getattr(policy, "obs_history", 1))
        self.asynchronous = config.async_inference and self.chunk_size > 1
        # Resolved at each call, so `replace_policy` takes effect on the worker too.
        self._worker = PlanWorker(lambda history: self.policy.plan(history)) if self.asynchronous else None
        self.policy_errors = 0
        """Plans that failed (raised or returned a bad shape)."""
        self._chunks: list[_Chunk] = []
        self._tick = 0
        self._next_index = 0
        self._running = False  # a chunk ran since the last drop: a tick without an action is then a missed one
        self._latencies: deque[float] = deque(maxlen=config.latency_window)
        self._plans = 0
        self._async_plans = 0
        self._late_chunks = 0
        self._stale_chunks = 0
        self._missed = 0
        self._overrun = 0
        self._late_now = False
        self._last_latency_s = math.nan

    # ----- episode control -----
    def reset(self) -> None:
        """A new episode: forget every chunk and the plan in flight, count ticks from zero, and start the policy's
        own episode (its optional `reset()`)."""
        self.drop()
        self._tick = 0
        reset = getattr(self.policy, "reset", None)
        if callable(reset):
            reset()

    def drop(self) -> None:
        """Forget every chunk and the plan in flight (someone else drives, the observation is incomplete, a plan
        failed); the next action waits for a fresh chunk."""
        self._chunks = []
        self._running = False
        self._late_now = False
        if self._worker is not None:
            self._worker.cancel()

    def replace_policy(self, policy: ChunkPolicy) -> None:
        """Plan with `policy` from now on (same chunk size and history length); current chunks are dropped.

        Raises:
            ValueError: `policy` has another chunk size or observation history.
        """
        shape = (int(policy.chunk_size), int(getattr(policy, "obs_history", 1)))
        if shape != (self.chunk_size, self.obs_history):
            raise ValueError(
                f"replacement policy has (chunk_size, obs_history) {shape}, expected "
                f"{(self.chunk_size, self.obs_history)}"
            )
        self.policy = policy
        self.drop()

    def close(self) -> None:
        """Stop the worker thread (if one was started)."""
        if self._worker is not None:
            self._worker.close()

    @property
    def planning(self) -> bool:
        """A plan is in flight on the worker (always False when planning synchronously)."""
        return self._worker is not None and self._worker.busy

    # ----- the tick -----
    def action(self, now_s: float, history: F32) -> ChunkAction:
        """This tick's action from the flat observation history `[T_o * O]` (the tick's own observation last).

        Raises:
            Exception: whatever `policy.plan` raised other than ValueError/RuntimeError (a bug, not a bad input),
                as a synchronous call would.
        """
        try:
            if self._worker is None:
                return self._sync(now_s, history)
            return self._async(self._worker, now_s, history)
        finally:
            self._tick += 1

    def _sync(self, now_s: float, history: F32) -> ChunkAction:
        if self.config.mode == "receding":
            cur = self._chunks[-1] if self._chunks else None
            need = cur is None or self._slot(cur, now_s) >= min(self.horizon, len(cur.values))
            if need:
                error = self._plan_now(now_s, history)
                if error:
                    return self._none(error, replanned=True)
            return self._receding(now_s, replanned=need)
        error = self._plan_now(now_s, history)
        if error:
            return self._none(error, replanned=True)
        return self._ensemble(now_s, replanned=True)

    def _async(self, worker: PlanWorker, now_s: float, history: F32) -> ChunkAction:
        replanned, error = False, ""
        result = worker.poll()
        if result is not None:
            error, replanned = self._take(result, now_s)
        self._prune(now_s)
        if not worker.busy and self._wants_plan(now_s):
            worker.submit(history, now_s, self._tick)  # after a failed plan: the retry starts on this tick
        if error:
            return self._none(error, replanned=False)
        out = self._receding(now_s, replanned) if self.config.mode == "receding" else self._ensemble(now_s, replanned)
        if out.error:
            return out
        self._late_now = False
        return out

    # ----- planning -----
    def _plan_now(self, now_s: float, history: F32) -> str:
        """Plan on the control thread; "" on success (the chunk is in use), else why not (counted, all dropped)."""
        t0 = time.perf_counter()
        try:
            raw = self.policy.plan(history)
        except (ValueError, RuntimeError) as exc:
            return self._failed(f"policy failed: {exc}")
        self._last_latency_s = time.perf_counter() - t0
        chunk, error = self._validated(raw, now_s, self._tick)
        if chunk is None:
            return self._failed(error)
        self._plans += 1
        self._install(chunk)
        return ""

    def _take(self, result: PlanResult, now_s: float) -> tuple[str, bool]:
        """A chunk from the worker: (error, installed)."""
        if result.error is not None:
            if not isinstance(result.error, ValueError | RuntimeError):
                raise result.error
            return self._failed(f"policy failed: {result.error}"), False
        self._last_latency_s = result.latency_s
        request = result.request
        chunk, error = self._validated(result.chunk, request.t_obs_s, request.tick)
        if chunk is None:
            return self._failed(error), False
        self._plans += 1
        self._async_plans += 1
        # Observation-to-availability time in tick-clock terms: what the schedule must cover.
        self._latencies.append(max(0.0, now_s - request.t_obs_s))
        if not 0 <= self._slot(chunk, now_s) < len(chunk.values):
            self._stale_chunks += 1
            self._late_chunks += 1
            return "", False
        if self._late_now:
            self._late_chunks += 1
        self._install(chunk)
        return "", True

    def _validated(self, raw: Any, t_obs_s: float, tick: int) -> tuple[_Chunk | None, str]:
        values = np.asarray(raw, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.n_act or values.shape[0] < 1:
            return None, f"policy returned shape {values.shape}, expected (chunk, {self.n_act})"
        chunk = _Chunk(self._next_index, values, t_obs_s, tick)
        self._next_index += 1
        return chunk, ""

    def _install(self, chunk: _Chunk) -> None:
        if self.config.mode == "receding":
            self._chunks = [chunk]
        else:
            self._chunks.append(chunk)
        self._running = True

    def _failed(self, error: str) -> str:
        self.policy_errors += 1
        self.drop()
        return error

    def _wants_plan(self, now_s: float) -> bool:
        """Asynchronous: whether to start the next plan now."""
        if self.config.mode == "ensemble" or not self._chunks:
            return True  # ensembling plans continuously; without a chunk, plan at once
        cur = self._chunks[-1]
        left = min(self.horizon, len(cur.values)) - self._slot(cur, now_s)
        return left <= self._lead_steps()

    def _lead_steps(self) -> int:
        if self.config.lead_steps:
            return self.config.lead_steps
        if not self._latencies:
            return self.horizon
        lead_s = max(self._latencies) + self.config.margin_periods * self.period_s
        return math.ceil(lead_s / self.period_s - 1e-9)

    # ----- picking the action -----
    def _slot(self, chunk: _Chunk, now_s: float) -> int:
        """The element of `chunk` for this tick: ticks since it was planned (synchronous, as the node always
        counted) or periods since its observation (asynchronous: aligned in time)."""
        if self._worker is None:
            return self._tick - chunk.tick
        return math.floor((now_s - chunk.t_obs_s) / self.period_s + 0.5)

    def _prune(self, now_s: float) -> None:
        """Drop chunks whose elements are all in the past (or in the future of a clock that went back)."""
        self._chunks = [c for c in self._chunks if 0 <= self._slot(c, now_s) < len(c.values)]

    def _receding(self, now_s: float, replanned: bool) -> ChunkAction:
        cur = self._chunks[-1] if self._chunks else None
        if cur is None:
            return self._no_action(replanned)
        slot = self._slot(cur, now_s)
        if not 0 <= slot < len(cur.values):  # never past the chunk's end
            return self._no_action(replanned)
        if slot >= self.horizon:
            self._overrun += 1
        return ChunkAction(cur.values[slot].copy(), replanned, "", cur.index, slot, self._stamp(cur, slot))

    def _ensemble(self, now_s: float, replanned: bool) -> ChunkAction:
        live = [(c, self._slot(c, now_s)) for c in self._chunks]
        live = [(c, s) for c, s in live if 0 <= s < len(c.values)]
        self._chunks = [c for c, _ in live]
        if not live:
            return self._no_action(replanned)
        predictions = np.stack([c.values[s] for c, s in live])  # oldest chunk first
        action = ensemble_average(predictions, self.config.ensemble_decay)
        newest, slot = live[-1]
        return ChunkAction(action, replanned, "", newest.index, slot, self._stamp(newest, slot))

    def _stamp(self, chunk: _Chunk, slot: int) -> float:
        return chunk.t_obs_s + slot * self.period_s

    def _no_action(self, replanned: bool) -> ChunkAction:
        if self._running:
            self._missed += 1
            self._late_now = True
            return self._none(
                "late chunk: the planner has not delivered the next chunk and the current one is used up (holding)",
                replanned,
            )
        return self._none("planning the first chunk (holding until it arrives)", replanned)

    def _none(self, error: str, replanned: bool) -> ChunkAction:
        return ChunkAction(np.full(self.n_act, np.nan), replanned, error)

    # ----- reporting -----
    def stats(self) -> ChunkStats:
        """Counters so far (session-wide; `reset` does not clear them)."""
        asynchronous_receding = self.asynchronous and self.config.mode == "receding"
        return ChunkStats(
            mode=self.config.mode,
            asynchronous=self.asynchronous,
            chunk_size=self.chunk_size,
            horizon=self.horizon,
            obs_history=self.obs_history,
            plans=self._plans,
            async_plans=self._async_plans,
            late_chunks=self._late_chunks,
            stale_chunks=self._stale_chunks,
            missed_actions=self._missed,
            overrun_steps=self._overrun,
            late_now=self._late_now,
            last_plan_latency_s=self._last_latency_s,
            lead_steps=self._lead_steps() if asynchronous_receding and self._latencies else 0,
        )


def ensemble_average(predictions: F64, decay: float) -> F64:
    """ACT's temporal ensemble (Zhao et al. 2023, §3.3): `Σ_i w_i·a_i / Σ_i w_i` with `w_i = exp(-m·i)` over the
    predictions `[N, A]` for the same step, i = 0 for the oldest."""
    weights = np.exp(-decay * np.arange(len(predictions), dtype=np.float64))
    out: F64 = (weights[:, None] * predictions).sum(axis=0) / weights.sum()
    return out
