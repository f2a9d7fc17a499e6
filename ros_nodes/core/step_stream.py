"""The policy node's step stream to a learner, off the control thread (ROS-free; the node passes `publish`).

The control tick hands the episode session's events (the ones the recorder gets) to `offer`, which numbers them
(`robot_rl.hil.sender.StreamSender`) and queues them; a worker thread encodes each (`robot_rl.hil.wire`) and calls
`publish(bytes)`. The tick never encodes, never publishes and never blocks: a full queue drops the message and
counts it (the learner sees the gap in `seq` and cuts its episode there). Every drop and publish error is counted
for `/diagnostics`; none is raised into the control loop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from robot_rl.hil.sender import EpisodeEndEvent, EpisodeStartEvent, StreamSender
from robot_rl.hil.wire import StreamMessage, encode
from robot_rl.safety.diagnostics import OK, WARN, DiagnosticEntry

_STOP = object()


class StepStream:
    """Numbered, encoded steps to `publish`, from a worker thread.

    Args:
        publish: called with each encoded message, on the worker thread (an rclpy publisher's `publish` wrapped
            into a message).
        bundle_sha256: the deployed bundle's ONNX sha256, stamped on every step (`set_bundle` after a swap).
        queue_size: messages waiting at most; beyond it `offer` drops and counts.
    """

    def __init__(self, publish: Callable[[bytes], Any], bundle_sha256: str, queue_size: int = 10_000) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.sender = StreamSender(bundle_sha256=bundle_sha256)
        self._publish = publish
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._counts = {"offered": 0, "published": 0, "dropped": 0, "errors": 0}
        self.last_error = ""
        self._next_bundle: str | None = None
        self._thread = threading.Thread(target=self._run, name="robot_rl-step-stream", daemon=True)
        self._thread.start()

    @property
    def run_id(self) -> str:
        """This node run's stream identity (a restarted node streams under a new one)."""
        return self.sender.run_id

    def set_bundle(self, sha256: str) -> None:
        """The bundle swapped in at the episode start among the next events offered (a hot swap or rollback
        happens at an episode start): steps before that start keep the old bundle's sha256, steps after it carry
        this one. Control thread."""
        self._next_bundle = sha256

    def offer(self, events: Iterable[object]) -> None:
        """Queue the steps of one tick's session events; never blocks (control thread, under the node lock)."""
        batch = list(events)
        split = len(batch)
        if self._next_bundle is not None:
            starts = [
                i
                for i, e in enumerate(batch)
                if isinstance(e, EpisodeStartEvent) and not isinstance(e, EpisodeEndEvent)
            ]
            split = starts[0] if starts else len(batch)
        messages = self.sender.messages(batch[:split])
        if split < len(batch):
            assert self._next_bundle is not None
            self.sender.bundle_sha256, self._next_bundle = self._next_bundle, None
            messages += self.sender.messages(batch[split:])
        for msg in messages:
            with self._lock:
                self._counts["offered"] += 1
            try:
                self._queue.put_nowait(msg)
            except queue.Full:
                with self._lock:
                    self._counts["dropped"] += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, StreamMessage)
            try:
                self._publish(encode(item))
            except Exception as exc:  # a bad step (WireError) or a failing middleware: counted, never raised
                with self._lock:
                    self._counts["errors"] += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                continue
            with self._lock:
                self._counts["published"] += 1

    def stats(self) -> dict[str, int]:
        """offered / published / dropped / errors, and the queue's current length."""
        with self._lock:
            out = dict(self._counts)
        out["queued"] = self._queue.qsize()
        out["next_seq"] = self.sender.next_seq
        return out

    def entry(self) -> DiagnosticEntry:
        """The `/diagnostics` entry (`step_stream`): WARN once a step was dropped or failed to publish."""
        st = self.stats()
        level = WARN if st["dropped"] or st["errors"] else OK
        text = f"run {self.run_id}: {st['published']} steps published, {st['dropped']} dropped (queue full)"
        if st["errors"]:
            text += f", {st['errors']} publish errors (last: {self.last_error})"
        return DiagnosticEntry("step_stream", level, text, {f"stream/{k}": str(v) for k, v in st.items()})

    def close(self, timeout_s: float = 2.0) -> None:
        """Publish what is queued (up to `timeout_s`), then stop the worker."""
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            pass
        self._thread.join(timeout_s)
