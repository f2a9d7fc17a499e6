"""Plan action chunks off the control thread: one worker thread, one request at a time (numpy only).

The control tick must never wait for a sampler that is slower than the control period, so the chunk executor hands
the observation history to this worker and polls for the chunk on later ticks. numpy and onnxruntime release the
GIL while they compute, so the control thread keeps its deadlines while the worker plans.

One worker, one request at a time: chunks come back in the order they were asked for, and a seeded sampler (the
bundle draws its noise from a generator of its own) still sees its calls in a reproducible order. A request made
while a stale one (cancelled by an episode reset or a takeover) is still running waits behind it; the stale result
is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class PlanRequest:
    """What to plan from."""

    history: F32
    """Flat observation history `[T_o * O]` (oldest first), copied at submission."""
    t_obs_s: float
    """Tick time (node clock, s) of the newest observation in `history`: chunk element 0 is the action for it."""
    tick: int
    """Executor tick count at submission (aligns chunks in the synchronous, tick-counted mode)."""
    generation: int
    """Worker generation at submission; a `cancel` since then makes the result stale."""


@dataclass(frozen=True)
class PlanResult:
    """A finished plan: the chunk, or why there is none."""

    request: PlanRequest
    """What it was planned from."""
    chunk: Any
    """What `policy.plan` returned (validated by the executor); None when it raised."""
    error: BaseException | None
    """The exception `policy.plan` raised (None on success)."""
    latency_s: float
    """Wall-clock time `policy.plan` took, s."""


class PlanWorker:
    """Runs `plan(history)` on a daemon thread; `submit` never blocks, `poll` returns the finished result once."""

    def __init__(
        self, plan: Callable[[F32], Any], *, name: str = "chunk_planner", clock: Callable[[], float] = time.perf_counter
    ) -> None:
        """Args:
        plan: the policy's `plan(history) -> [H, A]`; only this thread calls it.
        name: thread name (shows up in profilers and stack dumps).
        clock: wall clock for the latency figure.
        """
        self._plan = plan
        self._name = name
        self._clock = clock
        self._cv = threading.Condition()
        self._request: PlanRequest | None = None
        self._result: PlanResult | None = None
        self._running: PlanRequest | None = None
        self._generation = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        """A request of the current generation is waiting or being planned (its result is not out yet)."""
        with self._cv:
            running = self._running is not None and self._running.generation == self._generation
            return self._request is not None or running

    def submit(self, history: F32, t_obs_s: float, tick: int) -> None:
        """Ask for a chunk from `history` (replaces a request not yet started; never blocks).

        Raises:
            RuntimeError: the worker was closed.
        """
        with self._cv:
            if self._closed:
                raise RuntimeError("PlanWorker.submit after close()")
            self._request = PlanRequest(np.array(history, dtype=np.float32), t_obs_s, tick, self._generation)
            if self._thread is None:  # started on first use: a synchronous deployment never starts a thread
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def poll(self) -> PlanResult | None:
        """The finished result of the current generation, once (None while planning or when there is none)."""
        with self._cv:
            result, self._result = self._result, None
        return result

    def cancel(self) -> None:
        """Forget the request in flight: a plan still running finishes, and its result is dropped."""
        with self._cv:
            self._generation += 1
            self._request = None
            self._result = None

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread (after the plan it is running, waiting at most `timeout_s`)."""
        with self._cv:
            self._closed = True
            self._request = None
            self._cv.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._request is None and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                request, self._request = self._request, None
                assert request is not None
                self._running = request
            t0 = self._clock()
            chunk: Any = None
            error: BaseException | None = None
            try:
                chunk = self._plan(request.history)
            except Exception as exc:  # any failure goes back to the control thread, which decides what it means
                error = exc
            latency_s = self._clock() - t0
            with self._cv:
                self._running = None
                if request.generation == self._generation:
                    self._result = PlanResult(request, chunk, error, latency_s)
