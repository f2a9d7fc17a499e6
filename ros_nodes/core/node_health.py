"""The policy node's own health on `/diagnostics`, free of ROS: rejected inputs, policy errors and chunk execution,
watchdog ticks.

Nothing fails silently: every rejected message (by reason), every failed policy call, every action missed
waiting for a late chunk and every tick the node's watchdog issued in place of silent inputs is counted here and
shown as WARN, and a state the robot is held in or guarded by right now (a faulted joint state, a policy that
failed on the last tick, a chunk that is late, inputs silent past the timeout, a node that stopped ticking) is
ERROR. The node converts the entries to `diagnostic_msgs/DiagnosticStatus` (`policy_node/<name>`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from robot_rl.safety.diagnostics import ERROR, OK, WARN, DiagnosticEntry
from ros_nodes.core.chunk_executor import ChunkStats
from ros_nodes.core.node_watchdog import WatchdogStatus


@dataclass(frozen=True)
class NodeHealth:
    """The facts `/diagnostics` reports about the node itself, gathered under the node's lock."""

    active: bool
    """Control is running (lifecycle state active)."""
    rejected: Mapping[str, int]
    """Rejected input messages per counter key (`joint_states/<why>`, `<key>/<why>`)."""
    last_rejection: str
    """Reason of the most recent rejection ("" if none)."""
    input_fault: str
    """Why the joint-state source is faulted now ("" when its latest message was accepted)."""
    received: Mapping[str, int]
    """Messages taken per input kind (the denominators of the rejection counts)."""
    policy_errors: int
    """Ticks on which the policy could not produce an action."""
    last_policy_error: str
    """Reason of the most recent policy failure ("" if none)."""
    policy_failing: bool
    """The latest tick's policy call failed (the robot holds until it succeeds again)."""
    watchdog: WatchdogStatus
    """The node watchdog's view now."""
    chunks: ChunkStats | None = None
    """Chunk execution counters (plans, late chunks, missed actions, planning latency); None = not reported."""
    episode_start_waits: int = 0
    """Ticks held at an episode start until every observation source was refreshed (expected, not a fault)."""
    stability: StabilityHealth | None = None
    """The Lyapunov monitor's state; None when the chain has no `lyapunov` link."""


@dataclass(frozen=True)
class StabilityHealth:
    """What the Lyapunov monitor and the control step know about the bundle's stability certificate."""

    fed: int
    """Values of L the monitor judged."""
    failed_ticks: int
    """Ticks on which L did not decrease (`lyapunov` counter)."""
    trips: int
    """Times N failed ticks in a row tripped the monitor."""
    critic_errors: int
    """Ticks on which the critic graph raised or returned a non-number (each also a failed tick)."""
    on_violation: str
    """The configured action: report, hold, fallback or estop."""
    fell_back: bool
    """The control step switched to the fallback bundle."""
    last_trip: str
    """Reason of the last trip ("" if none)."""


def _counts(values: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


def input_entry(h: NodeHealth) -> DiagnosticEntry:
    """`input`: rejected messages by reason; ERROR while the latest joint state is rejected (the node holds)."""
    total = sum(h.rejected.values())
    values = {f"rejected/{k}": str(v) for k, v in sorted(h.rejected.items())}
    values.update({f"received/{k}": str(v) for k, v in sorted(h.received.items())})
    values["episode_start_waits"] = str(h.episode_start_waits)
    values["last_rejection"] = h.last_rejection
    if h.input_fault:
        return DiagnosticEntry("input", ERROR, f"holding: {h.input_fault} ({_counts(h.rejected)})", values)
    if total:
        message = f"{total} rejected ({_counts(h.rejected)}); last: {h.last_rejection}"
        return DiagnosticEntry("input", WARN, message, values)
    return DiagnosticEntry("input", OK, "no rejected messages", values)


def policy_entry(h: NodeHealth) -> DiagnosticEntry:
    """`policy`: failed policy calls and chunk execution; ERROR while the latest call failed or the robot holds
    for a late chunk, WARN after either happened."""
    values = {"policy_errors": str(h.policy_errors), "last_policy_error": h.last_policy_error}
    c = h.chunks
    if c is not None:
        values.update(c.values())
    if h.policy_failing:
        message = f"holding: {h.last_policy_error} ({h.policy_errors} failed calls)"
        return DiagnosticEntry("policy", ERROR, message, values)
    if c is not None and c.late_now:
        message = (
            f"holding: the next chunk is late ({c.missed_actions} missed actions, {c.late_chunks} late chunks, "
            f"last plan {_ms(c.last_plan_latency_s)})"
        )
        return DiagnosticEntry("policy", ERROR, message, values)
    if h.policy_errors:
        message = f"{h.policy_errors} failed calls; last: {h.last_policy_error}"
        return DiagnosticEntry("policy", WARN, message, values)
    if c is not None and c.missed_actions:
        message = f"{c.missed_actions} actions missed waiting for {c.late_chunks} late chunks (held)"
        return DiagnosticEntry("policy", WARN, message, values)
    if c is not None and c.chunk_size > 1:
        kind = f"{c.mode}{' async' if c.asynchronous else ''}"
        message = f"no failed calls; {c.plans} chunks planned ({kind}, last plan {_ms(c.last_plan_latency_s)})"
        return DiagnosticEntry("policy", OK, message, values)
    return DiagnosticEntry("policy", OK, "no failed calls", values)


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{1e3 * seconds:.3g} ms"  # NaN before the first plan


def watchdog_entry(h: NodeHealth) -> DiagnosticEntry:
    """`watchdog`: ERROR while the watchdog stands in for silent inputs (or a stopped control thread) or nothing
    ticks at all."""
    w = h.watchdog
    values = {
        "watchdog_ticks": str(w.watchdog_ticks),
        "silent_s": f"{w.silent_s:.3f}",
        "since_tick_s": f"{w.since_tick_s:.3f}",
    }
    if w.stalled:
        message = f"not controlling: no command published for {w.since_tick_s:.3g} s (active)"
        return DiagnosticEntry("watchdog", ERROR, message, values)
    if w.standing_in:
        # In the topic mode the inputs are stale by then, so these ticks hold; in the timer mode the control thread
        # is the one that stopped, and the chain still decides (fresh input drives, stale input holds).
        message = (
            f"standing in: no input-driven tick for {w.silent_s:.3g} s, the watchdog ticks instead "
            f"({w.watchdog_ticks} watchdog ticks)"
        )
        return DiagnosticEntry("watchdog", ERROR, message, values)
    if w.watchdog_ticks:
        message = f"{w.watchdog_ticks} watchdog ticks so far; inputs ticking now" if w.armed else "inactive"
        return DiagnosticEntry("watchdog", WARN, message, values)
    return DiagnosticEntry("watchdog", OK, "inputs ticking" if w.armed else "inactive", values)


def stability_entry(st: StabilityHealth) -> DiagnosticEntry:
    """`stability`: the Lyapunov monitor. ERROR after a trip (the configured action was taken), WARN while ticks
    fail or the critic errs, OK otherwise; a monitor that was never fed checks nothing, and says so."""
    values = {
        "judged": str(st.fed),
        "failed_ticks": str(st.failed_ticks),
        "trips": str(st.trips),
        "critic_errors": str(st.critic_errors),
        "on_violation": st.on_violation,
        "fell_back": str(st.fell_back).lower(),
        "last_trip": st.last_trip,
    }
    if st.trips:
        return DiagnosticEntry("stability", ERROR, f"tripped {st.trips}x ({st.on_violation}): {st.last_trip}", values)
    if st.failed_ticks or st.critic_errors:
        message = f"{st.failed_ticks} of {st.fed} ticks without a decrease; {st.critic_errors} critic errors"
        return DiagnosticEntry("stability", WARN, message, values)
    message = f"L decreased on all {st.fed} judged ticks" if st.fed else "not fed yet (the policy has not driven)"
    return DiagnosticEntry("stability", OK, message, values)


def node_entries(h: NodeHealth) -> tuple[DiagnosticEntry, ...]:
    """The node's own entries, in a fixed order: input, policy, watchdog (and stability with a Lyapunov monitor)."""
    entries = (input_entry(h), policy_entry(h), watchdog_entry(h))
    return entries + ((stability_entry(h.stability),) if h.stability is not None else ())


def loop_level(last_error: str, watchdog: WatchdogStatus) -> int:
    """Level of `policy_node/loop`: ERROR on a recorded error or when an active node stopped ticking."""
    return ERROR if last_error or watchdog.stalled else OK
