"""The learner process's loop, ROS-free: stream bytes in, episodes to the learner, updates, announcements out.

Two threads use it. The middleware's callback thread calls `on_message` (decode, sequence check, episode
assembly: cheap, never blocks on training) and `on_stream_lost`; one worker thread calls `work` repeatedly, which
hands the closed episodes to the `HilLearner`, runs the updates they are owed in small slices (so a new episode
waits at most one slice), and exports and announces a verified bundle when one is due. The ROS node
(`ros_nodes/learner_node.py`) is a shell around it: a subscription, a latched publisher, a timer for
`/diagnostics`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from robot_rl.hil.announcement import BundleAnnouncement
from robot_rl.hil.episodes import AssembledEpisode
from robot_rl.hil.learner import ExportedBundle, HilLearner
from robot_rl.hil.receiver import StreamReceiver

log = logging.getLogger(__name__)


class LearnerService:
    """See the module docstring.

    Args:
        learner: the learner (fresh or resumed).
        announce: called with each announcement's JSON (the latched topic's publish), on the worker thread.
        run_id: this learner run's identity, stamped on its announcements.
        updates_per_slice: most updates between two looks at new episodes.
    """

    def __init__(
        self,
        learner: HilLearner,
        announce: Callable[[str], Any],
        run_id: str,
        updates_per_slice: int = 20,
    ) -> None:
        if updates_per_slice < 1:
            raise ValueError(f"updates_per_slice must be >= 1, got {updates_per_slice}")
        self.learner = learner
        self.receiver = StreamReceiver(learner.env_spec.observation.dim, learner.env_spec.action.dim)
        self._announce = announce
        self.run_id = run_id
        self.updates_per_slice = updates_per_slice
        self._lock = threading.Lock()  # guards the receiver and the inbox (callback thread vs worker)
        self._inbox: deque[AssembledEpisode] = deque()
        self.latest: BundleAnnouncement | None = None
        """The last bundle announced (re-announced after a restart so the node learns of it again)."""
        self.errors = 0
        """Episodes the learner could not take, and failed exports (each logged; the loop goes on)."""
        self.last_error = ""
        self.exports = 0
        self.stream_lost = 0
        """Times the node's stream went silent (liveliness lost): the open episode was closed as cut."""

    # ------------------------------------------------------------------------------ middleware callback thread

    def on_message(self, data: bytes) -> None:
        """One stream message (malformed ones are counted by the receiver, never raised)."""
        with self._lock:
            closed = self.receiver.push(data)
            self._inbox.extend(closed)

    def on_stream_lost(self) -> None:
        """The policy node is gone (its liveliness lapsed): close the open episode; what arrives next is new."""
        with self._lock:
            self._inbox.extend(self.receiver.flush())
            self.stream_lost += 1

    # ------------------------------------------------------------------------------------------ worker thread

    def announce_latest(self) -> None:
        """Announce the newest bundle this run exported before (after a restart), if any."""
        if not self.learner.announced:
            return
        last = self.learner.announced[-1]
        self._publish(
            BundleAnnouncement.now(
                bundle_dir=str(last["dir"]),
                onnx_sha256=str(last["sha256"]),
                training_step=int(last["updates"]),
                run_id=self.run_id,
                metrics=_finite(self.learner.metrics()),
            )
        )

    def work(self) -> bool:
        """One slice: take closed episodes, run at most `updates_per_slice` updates, export when due. Returns
        whether anything was done (the caller sleeps briefly when not)."""
        with self._lock:
            episodes = list(self._inbox)
            self._inbox.clear()
        did = bool(episodes)
        for assembled in episodes:
            for ep in assembled.episodes:
                try:
                    self.learner.add_episode(ep, success=assembled.success)
                except Exception as exc:  # a base that refuses an episode must not stop the learner
                    self._fail(f"episode {assembled.run_id}/{assembled.episode} refused: {type(exc).__name__}: {exc}")
        ran = self.learner.train(max_updates=self.updates_per_slice)
        did = did or ran > 0
        if self.learner.export_due:
            self._export()
            did = True
        return did

    def _export(self) -> None:
        try:
            exported = self.learner.export()
        except Exception as exc:  # a failed parity check or a full disk: counted, tried again at the next due
            self._fail(f"export failed: {type(exc).__name__}: {exc}")
            self.learner.defer_export()
            return
        self.exports += 1
        self._publish(_announcement(exported, self.run_id))

    def _publish(self, a: BundleAnnouncement) -> None:
        self.latest = a
        try:
            self._announce(a.to_json())
        except Exception as exc:
            self._fail(f"announce failed: {type(exc).__name__}: {exc}")

    def _fail(self, text: str) -> None:
        self.errors += 1
        self.last_error = text
        log.error(text)

    def stats(self) -> dict[str, Any]:
        """Receiver counters, learner figures, exports and errors (for `/diagnostics`)."""
        with self._lock:
            out: dict[str, Any] = dict(self.receiver.stats())
            out["inbox"] = len(self._inbox)
        out.update({f"learner/{k}": v for k, v in self.learner.metrics().items()})
        out.update({"exports": self.exports, "errors": self.errors, "stream_lost": self.stream_lost})
        return out

    def run(self, stop: threading.Event, idle_s: float = 0.02) -> None:
        """`work` until `stop` is set (the node's worker thread)."""
        while not stop.is_set():
            if not self.work():
                time.sleep(idle_s)


def _finite(values: dict[str, float]) -> dict[str, float]:
    """The announcement refuses non-finite metrics: leave them out."""
    return {k: float(v) for k, v in values.items() if math.isfinite(float(v))}


def _announcement(exported: ExportedBundle, run_id: str) -> BundleAnnouncement:
    return BundleAnnouncement.now(
        bundle_dir=str(exported.bundle_dir.resolve()),
        onnx_sha256=exported.onnx_sha256,
        training_step=exported.updates,
        run_id=run_id,
        metrics=_finite(dict(exported.metrics)),
    )
