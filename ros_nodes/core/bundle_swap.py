"""Hot swap of the deployed bundle (issue 15), free of ROS: verify announced bundles off the control thread, switch
only at an episode boundary, and roll back when the new bundle does worse.

A learner announces each exported bundle (`robot_rl.hil.announcement.BundleAnnouncement`); the policy node hands it
to a `BundleSwapper`:

- `announce` returns at once. A worker thread verifies the bundle with every check configure runs on a bundle
  (hash, signature by the node's `trusted_keys`, robot, joints, command interface, observation layout, safety
  limits: `deployment.check_bundle`) plus the swap's own (`swap_verify.deployment_verifier`): the loaded
  model's sha256 equals the announced one, and the bundle drives the robot exactly like the running one (same
  robot interface, observation layout, action spec, control rate, chunk size / history / execution horizon,
  safety limits), so the `ControlStep` keeps its observation history, safety chain and arbiter. A later
  announcement supersedes one still waiting; a verified bundle waits (`pending`) until a newer one is verified or
  a boundary adopts it.
- A refused bundle is counted, with its reason, and the running one keeps running.
- `at_episode_boundary` (called by `SwappableChunkPolicy.reset`, i.e. whenever the `EpisodeSession` starts an
  episode) returns the switch to make, never mid-episode. The bundle it replaces is kept for rollback.
- Rollback: success of each bundle over its last M episodes. When the new bundle's rate falls below the previous
  one's by more than a margin (both judged on at least `min_episodes`), or an operator asks
  (`request_rollback`), the next boundary returns to the previous bundle; the rolled-back sha256 is not
  re-adopted if announced again (unless configured).
- `stats()` for `/diagnostics`: active/previous/pending bundles, swaps, refusals and the last reason, rollbacks,
  and the swap latency (announcement received → first tick on the new bundle, reported by the caller).

Nothing here raises into the control loop: `at_episode_boundary` and `first_tick` only take a lock and move
references; verification failures of any kind are refusals.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from robot_rl.export.errors import BundleError
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.hil.announcement import BundleAnnouncement
from ros_nodes.core.control_step import OnnxChunkPolicy
from ros_nodes.core.deployment import PolicyNodeConfig
from ros_nodes.core.episode_session import EpisodeEnd
from ros_nodes.core.swap_stats import BundleSwitch, SwapStats

F64 = npt.NDArray[np.float64]

Verifier = Callable[[BundleAnnouncement], OnnxPolicy]
"""Load and verify an announced bundle; raises (BundleError/ValueError, any exception) with the refusal reason."""

JUDGED_ENDS = ("robot", "max_steps")
"""Episode ends that count for rollback (as `EpisodeSession.successes`): operator cuts and halts do not."""


@dataclass(frozen=True)
class BundleSwapConfig:
    """When announced bundles are adopted and rolled back (node parameters `swap_*`)."""

    window_episodes: int = 20
    """M: a bundle's success rate is taken over its last M judged episodes (robot end or step limit)."""
    rollback_margin: float = 0.2
    """Roll back automatically when the new bundle's success rate is below the previous bundle's by more than this
    (absolute, 0..1)."""
    min_episodes: int = 5
    """Episodes each of the two bundles must have run before the comparison is made (1..window_episodes)."""
    verify_timeout_s: float = 60.0
    """A verification still running after this long is refused (its thread is abandoned; the next announcement
    is verified on a fresh one), s."""
    readopt_rolled_back: bool = False
    """Adopt a bundle that was rolled back if it is announced again (False: refused with the rollback's reason)."""
    accept_unsigned_when_pinned: bool = False
    """A deployment pinned by `expected_sha256` without `trusted_keys` also accepts announced bundles, which are
    then authenticated only by the announcement's sha256 (anyone on the ROS graph can publish one). False: such
    announcements are refused; sign the learner's exports and set `trusted_keys` instead."""

    @classmethod
    def from_node_config(cls, config: PolicyNodeConfig) -> BundleSwapConfig:
        """From the policy node's `swap_*` parameters.

        Raises:
            ValueError: a value out of range (named).
        """
        return cls(
            window_episodes=int(config.swap_window_episodes),
            rollback_margin=float(config.swap_rollback_margin),
            min_episodes=int(config.swap_min_episodes),
            verify_timeout_s=float(config.swap_verify_timeout_s),
            readopt_rolled_back=bool(config.swap_readopt_rolled_back),
            accept_unsigned_when_pinned=bool(config.swap_accept_unsigned_when_pinned),
        )

    def __post_init__(self) -> None:
        if self.window_episodes < 1:
            raise ValueError(f"swap window_episodes must be >= 1, got {self.window_episodes}")
        if not 1 <= self.min_episodes <= self.window_episodes:
            raise ValueError(
                f"swap min_episodes must be in [1, window_episodes={self.window_episodes}], got {self.min_episodes}"
            )
        if not (math.isfinite(self.rollback_margin) and 0.0 <= self.rollback_margin <= 1.0):
            raise ValueError(f"swap rollback_margin must be in [0, 1], got {self.rollback_margin}")
        if not (math.isfinite(self.verify_timeout_s) and self.verify_timeout_s > 0):
            raise ValueError(f"swap verify_timeout_s must be finite and > 0, got {self.verify_timeout_s}")


@dataclass
class _Bundle:
    """A verified bundle the swapper holds (active, previous or pending)."""

    sha256: str
    policy: OnnxPolicy
    origin: str
    received_s: float | None = None  # swapper clock when its announcement arrived (None: the configured bundle)


@dataclass
class _Outcome:
    """What one verification thread produced (written by it, read by the dispatcher after joining it)."""

    policy: OnnxPolicy | None = None
    error: str = ""


class BundleSwapper:
    """Verifies announced bundles on a worker thread and decides, at episode boundaries, which bundle runs.

    Thread-safe: `announce`/`note_malformed`/`request_rollback` come from the ROS executor thread,
    `at_episode_boundary`/`record_episode`/`first_tick` from the control thread, verification runs on the
    swapper's own threads; every call only holds the swapper's lock briefly.
    """

    def __init__(
        self,
        initial: OnnxPolicy,
        verify: Verifier,
        config: BundleSwapConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Args:
        initial: the bundle configure verified (active until the first swap).
        verify: loads and verifies an announced bundle (`deployment_verifier` for a node), raising with the reason.
        config: windows, margin, timeouts.
        clock: monotonic time, s (announcement receipt, first tick, verification time).
        """
        self.config = config or BundleSwapConfig()
        self._verify = verify
        self._clock = clock
        self._shape = _chunk_shape(initial)
        self._cond = threading.Condition()
        self._active = _Bundle(initial.manifest.onnx_sha256, initial, "configured")
        self._previous: _Bundle | None = None
        self._pending: _Bundle | None = None
        self._queued: tuple[BundleAnnouncement, float] | None = None
        self._verifying: BundleAnnouncement | None = None
        self._history: dict[str, deque[bool]] = {self._active.sha256: self._window()}
        self._blocked: dict[str, str] = {}
        self._rollback_request = ""
        self._awaiting_first_tick: float | None = None
        self._closing = False
        self._n = dict.fromkeys(
            (
                "announcements",
                "malformed",
                "duplicates",
                "refusals",
                "superseded",
                "swaps",
                "rollbacks",
                "auto",
                "errors",
            ),
            0,
        )
        self._last_refusal = ""
        self._last_rollback = ""
        self._last_error = ""
        self._latest_event = ""
        self._last_latency_s: float | None = None
        self._last_verify_s: float | None = None
        self._dispatcher = threading.Thread(target=self._dispatch, name="bundle_swap", daemon=True)
        self._dispatcher.start()

    # ----- announcements (ROS executor thread) -----
    def announce(self, announcement: BundleAnnouncement) -> str:
        """Queue an announced bundle for verification and return at once; what became of it, in one line
        ("verifying ...", "duplicate: ...", "refused: ...")."""
        sha = announcement.onnx_sha256
        with self._cond:
            self._n["announcements"] += 1
            if self._closing:
                return self._refuse(announcement, "the swapper is closed")
            known = {
                self._active.sha256: "already active",
                self._pending.sha256 if self._pending else "": "already verified, waiting for an episode boundary",
                self._verifying.onnx_sha256 if self._verifying and not self._queued else "": "being verified",
                self._queued[0].onnx_sha256 if self._queued else "": "already queued for verification",
            }
            if sha in known:
                self._n["duplicates"] += 1
                return f"duplicate: {sha[:12]} is {known[sha]}"
            if sha in self._blocked and not self.config.readopt_rolled_back:
                return self._refuse(announcement, f"it was rolled back ({self._blocked[sha]}); not re-adopted")
            if self._queued is not None:
                self._n["superseded"] += 1  # a later announcement supersedes one still waiting
            self._queued = (announcement, self._clock())
            self._cond.notify_all()
            return f"verifying {sha[:12]} (run {announcement.run_id}, step {announcement.training_step})"

    def note_malformed(self, reason: str) -> None:
        """Count an announcement message that could not be parsed (`AnnouncementError`), with its reason."""
        with self._cond:
            self._n["malformed"] += 1
            self._n["refusals"] += 1
            self._last_refusal = f"malformed announcement: {reason}"
            self._latest_event = "refused"

    # ----- episode boundaries (control thread) -----
    def at_episode_boundary(self) -> BundleSwitch | None:
        """The switch to make now that an episode starts (a rollback first, else the pending bundle), or None.

        Call only between episodes; the returned bundle is active from this call on. Never raises.
        """
        try:
            with self._cond:
                reason = self._rollback_request or self._auto_rollback_reason()
                if reason and self._previous is not None:
                    return self._rollback(self._previous, reason, automatic=not self._rollback_request)
                self._rollback_request = ""
                if self._pending is not None:
                    return self._swap(self._pending)
                return None
        except Exception as exc:  # the control loop must not die on bookkeeping; the running bundle stays
            self.note_error(f"at_episode_boundary: {type(exc).__name__}: {exc}")
            return None

    def record_episode(self, success: bool, bundle_sha256: str | None = None) -> None:
        """One judged episode ended, run by `bundle_sha256` (None = the active bundle). Episodes of bundles no
        longer held (neither active nor previous) are ignored."""
        with self._cond:
            sha = self._active.sha256 if bundle_sha256 is None else bundle_sha256
            history = self._history.get(sha)
            if history is not None:
                history.append(bool(success))

    def first_tick(self, now_s: float | None = None) -> None:
        """The first control tick on the latest swapped-in bundle ran at `now_s` (swapper clock; None = now):
        completes the swap latency. A no-op when no swap is waiting for its first tick."""
        with self._cond:
            received = self._awaiting_first_tick
            if received is None:
                return
            self._awaiting_first_tick = None
            latency = (self._clock() if now_s is None else float(now_s)) - received
            if math.isfinite(latency) and latency >= 0:
                self._last_latency_s = latency

    @property
    def awaiting_first_tick(self) -> bool:
        """A swap happened and its first tick was not reported yet."""
        return self._awaiting_first_tick is not None

    # ----- operator -----
    def request_rollback(self, reason: str = "operator request") -> tuple[bool, str]:
        """Return to the previous bundle at the next episode boundary (dropping any pending bundle).

        Returns:
            (accepted, message): refused when there is no previous bundle.
        """
        with self._cond:
            if self._previous is None:
                return False, f"no previous bundle to roll back to (active {self._active.sha256[:12]})"
            self._rollback_request = f"manual: {reason}"
            return True, (
                f"rollback from {self._active.sha256[:12]} to {self._previous.sha256[:12]} at the next episode start"
            )

    # ----- state -----
    @property
    def active_sha256(self) -> str:
        """The model running now."""
        return self._active.sha256

    @property
    def active_origin(self) -> str:
        """Where the running bundle came from ("configured", "<run_id>@<training_step>", "... (rolled back to)")."""
        return self._active.origin

    @property
    def active_policy(self) -> OnnxPolicy:
        """The bundle running now."""
        return self._active.policy

    def stats(self) -> SwapStats:
        """A consistent snapshot of the counters and state."""
        with self._cond:
            prev = self._previous
            active_history = self._history.get(self._active.sha256, ())
            return SwapStats(
                active_sha256=self._active.sha256,
                active_origin=self._active.origin,
                previous_sha256=prev.sha256 if prev else "",
                pending_sha256=self._pending.sha256 if self._pending else "",
                verifying_sha256=self._verifying.onnx_sha256 if self._verifying else "",
                queued_sha256=self._queued[0].onnx_sha256 if self._queued else "",
                announcements=self._n["announcements"],
                malformed=self._n["malformed"],
                duplicates=self._n["duplicates"],
                refusals=self._n["refusals"],
                last_refusal=self._last_refusal,
                superseded=self._n["superseded"],
                swaps=self._n["swaps"],
                rollbacks=self._n["rollbacks"],
                auto_rollbacks=self._n["auto"],
                last_rollback=self._last_rollback,
                blocked=tuple(self._blocked),
                last_swap_latency_s=self._last_latency_s,
                last_verify_s=self._last_verify_s,
                active_episodes=len(active_history),
                active_success_rate=_rate(active_history),
                previous_success_rate=_rate(self._history.get(prev.sha256, ())) if prev else None,
                latest_event=self._latest_event,
                errors=self._n["errors"],
                last_error=self._last_error,
            )

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no announcement is queued or in verification (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queued is not None or self._verifying is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        """Stop the dispatcher (a verification in flight is abandoned); later announcements are refused."""
        with self._cond:
            self._closing = True
            self._queued = None
            self._cond.notify_all()
        self._dispatcher.join(timeout=1.0)

    # ----- internals (callers hold the lock unless said otherwise) -----
    def _window(self) -> deque[bool]:
        return deque(maxlen=self.config.window_episodes)

    def _refuse(self, announcement: BundleAnnouncement, reason: str) -> str:
        self._n["refusals"] += 1
        a = announcement
        self._last_refusal = f"{a.onnx_sha256[:12]} (run {a.run_id}, step {a.training_step}): {reason}"
        self._latest_event = "refused"
        return f"refused: {self._last_refusal}"

    def note_error(self, what: str) -> None:
        """Count an internal error of the swap bookkeeping (shown on `/diagnostics`; the running bundle stays)."""
        with self._cond:
            self._n["errors"] += 1
            self._last_error = what

    def _auto_rollback_reason(self) -> str:
        prev = self._previous
        if prev is None:
            return ""
        new, old = self._history.get(self._active.sha256, ()), self._history.get(prev.sha256, ())
        need = self.config.min_episodes
        if len(new) < need or len(old) < need:
            return ""
        new_rate, old_rate = _rate(new), _rate(old)
        if new_rate is None or old_rate is None or new_rate >= old_rate - self.config.rollback_margin:
            return ""
        return (
            f"automatic: success {new_rate:.2f} over its last {len(new)} episodes is below the previous bundle's "
            f"{old_rate:.2f} (last {len(old)}) by more than the margin {self.config.rollback_margin:g}"
        )

    def _rollback(self, good: _Bundle, reason: str, *, automatic: bool) -> BundleSwitch:
        bad = self._active
        if not self.config.readopt_rolled_back:
            self._blocked[bad.sha256] = reason
        if self._pending is not None:
            self._n["superseded"] += 1  # what the learner offered next is dropped with the bundle judged bad
            self._pending = None
        self._active, self._previous = good, None
        self._history = {good.sha256: self._history.get(good.sha256) or self._window()}
        self._rollback_request = ""
        self._awaiting_first_tick = None
        self._n["rollbacks"] += 1
        self._n["auto"] += int(automatic)
        self._last_rollback = f"{bad.sha256[:12]} -> {good.sha256[:12]}: {reason}"
        self._latest_event = "rollback"
        if not good.origin.endswith(" (rolled back to)"):
            good.origin += " (rolled back to)"
        return BundleSwitch("rollback", good.policy, good.sha256, bad.sha256, reason)

    def _swap(self, new: _Bundle) -> BundleSwitch:
        old = self._active
        self._pending = None
        self._active, self._previous = new, old
        # Only the two bundles a rollback can compare are remembered; the new one starts an empty window.
        self._history = {old.sha256: self._history.get(old.sha256) or self._window(), new.sha256: self._window()}
        self._awaiting_first_tick = new.received_s
        self._n["swaps"] += 1
        self._latest_event = "swap"
        return BundleSwitch("swap", new.policy, new.sha256, old.sha256, f"announced by {new.origin}")

    def _dispatch(self) -> None:
        """The worker: verify the latest queued announcement on a thread of its own, bounded by the timeout."""
        while True:
            with self._cond:
                while self._queued is None and not self._closing:
                    self._cond.wait()
                if self._closing or self._queued is None:
                    return
                announcement, received_s = self._queued
                self._queued = None
                self._verifying = announcement
                started = self._clock()
            outcome = _Outcome()
            worker = threading.Thread(
                target=self._run_verify, args=(announcement, outcome), name="bundle_swap_verify", daemon=True
            )
            worker.start()
            worker.join(self.config.verify_timeout_s)
            with self._cond:
                self._verifying = None
                self._last_verify_s = max(0.0, self._clock() - started)
                if worker.is_alive():
                    self._refuse(announcement, f"verification did not finish within {self.config.verify_timeout_s:g} s")
                elif outcome.policy is None:
                    self._refuse(announcement, outcome.error or "the verifier returned nothing")
                elif self._queued is not None or self._closing:
                    self._n["superseded"] += 1  # announced again meanwhile: the newer one is verified next
                else:
                    self._accept(announcement, outcome.policy, received_s)
                self._cond.notify_all()

    def _run_verify(self, announcement: BundleAnnouncement, outcome: _Outcome) -> None:
        """One verification (its own thread, no lock held): any exception is the refusal's reason."""
        try:
            policy = self._verify(announcement)
            sha = policy.manifest.onnx_sha256
            if sha != announcement.onnx_sha256:
                raise BundleError(f"announced sha256 {announcement.onnx_sha256} but the loaded model is {sha}")
            shape = _chunk_shape(policy)
            if shape != self._shape:
                raise BundleError(
                    f"(chunk_size, obs_history, execution_horizon) {shape} differ from the running bundle's "
                    f"{self._shape}: the control step cannot keep its history and chunk schedule"
                )
            outcome.policy = policy
        except Exception as exc:  # whatever a bad bundle makes the loader raise is a refusal, not a crash
            outcome.error = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"

    def _accept(self, announcement: BundleAnnouncement, policy: OnnxPolicy, received_s: float) -> None:
        sha = announcement.onnx_sha256
        if sha in self._blocked and not self.config.readopt_rolled_back:  # rolled back while it was verified
            self._refuse(announcement, f"it was rolled back ({self._blocked[sha]}); not re-adopted")
            return
        if sha == self._active.sha256:
            self._n["duplicates"] += 1
            return
        if self._pending is not None:
            self._n["superseded"] += 1
        origin = f"{announcement.run_id}@{announcement.training_step}"
        self._pending = _Bundle(sha, policy, origin, received_s)


class SwappableChunkPolicy:
    """The `ControlStep`'s policy under hot swap: plans with the active bundle and, at each episode start (the
    chunk executor calls `reset` when the `EpisodeSession` starts an episode), first credits the episodes that just
    ended to the bundle that ran them, then asks the swapper which bundle runs next.

    Install it with `step.policy = SwappableChunkPolicy(...)` (same chunk size and history as the bundle).
    """

    def __init__(
        self,
        swapper: BundleSwapper,
        episodes: Callable[[], Sequence[EpisodeEnd]] | None = None,
    ) -> None:
        """Args:
        swapper: decides what runs; its active bundle is what plans now.
        episodes: the session's ended episodes so far (`lambda: session.episodes`); None = the caller reports
            outcomes itself (`BundleSwapper.record_episode`).
        """
        self.swapper = swapper
        self._episodes = episodes
        self._seen = len(episodes()) if episodes is not None else 0
        self._policy = swapper.active_policy
        self._inner = OnnxChunkPolicy(self._policy)
        self.sha256 = swapper.active_sha256
        """The model planning now (what this episode's metadata names)."""
        self.chunk_size = self._inner.chunk_size
        """H (the same for every bundle the swapper admits)."""
        self.execution_horizon = self._inner.execution_horizon
        """H_a."""
        self.obs_history = self._inner.obs_history
        """T_o."""
        self.last_switch: BundleSwitch | None = None
        """The latest switch made (None before the first)."""

    @property
    def policy(self) -> OnnxPolicy:
        """The bundle planning now."""
        return self._policy

    def plan(self, observation: npt.NDArray[np.float32]) -> F64:
        """[H, A] from the active bundle (see `OnnxChunkPolicy.plan`)."""
        return self._inner.plan(observation)

    def reset(self) -> None:
        """An episode starts: credit the ended episodes, switch if the swapper says so, reset the bundle."""
        if self._episodes is not None:
            try:
                ended = self._episodes()
                for end in ended[self._seen :]:
                    if end.ended_by in JUDGED_ENDS:
                        self.swapper.record_episode(bool(end.is_success), self.sha256)
                self._seen = len(ended)
            except Exception as exc:  # bookkeeping must not stop an episode from starting
                self.swapper.note_error(f"crediting episodes: {type(exc).__name__}: {exc}")
        switch = self.swapper.at_episode_boundary()
        if switch is not None:
            self._policy, self._inner = switch.policy, OnnxChunkPolicy(switch.policy)
            self.sha256 = switch.sha256
            self.last_switch = switch
        self._inner.reset()


def _chunk_shape(policy: OnnxPolicy) -> tuple[int, int, int]:
    spec = policy.spec
    return int(spec.chunk_size), int(spec.obs_history), int(spec.execution_horizon)


def _rate(history: Sequence[bool]) -> float | None:
    return sum(history) / len(history) if history else None
