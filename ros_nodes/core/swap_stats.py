"""What a hot swap reports: the switch to make at an episode boundary, and the swapper's counters for
`/diagnostics` and the loop summary (`ros_nodes/core/bundle_swap.py`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from robot_rl.export.runtime import OnnxPolicy
from robot_rl.safety.diagnostics import OK, WARN, DiagnosticEntry


@dataclass(frozen=True)
class BundleSwitch:
    """What to switch the control step to at this episode boundary."""

    kind: str
    """"swap" (an announced bundle) or "rollback" (back to the previous bundle)."""
    policy: OnnxPolicy
    """The verified bundle to run from this episode on."""
    sha256: str
    """Its model's sha256."""
    replaced_sha256: str
    """The sha256 of the bundle it replaces."""
    reason: str
    """Why: the announcement (run, step) for a swap, the rollback's reason for a rollback."""


@dataclass(frozen=True)
class SwapStats:
    """The swapper's counters and state for `/diagnostics` and the loop summary."""

    active_sha256: str
    """Model running now."""
    active_origin: str
    """"configured", "<run_id>@<training_step>" (an announced bundle) or the same with " (rolled back to)"."""
    previous_sha256: str
    """Bundle kept for rollback ("" = none)."""
    pending_sha256: str
    """Verified bundle waiting for the next episode boundary ("" = none)."""
    verifying_sha256: str
    """Bundle being verified now ("" = none)."""
    queued_sha256: str
    """Announcement waiting for the verification in flight ("" = none)."""
    announcements: int
    """Announcements received (well-formed ones)."""
    malformed: int
    """Announcement messages refused before parsing into an announcement (bad JSON, missing field ...)."""
    duplicates: int
    """Announcements of the bundle already active, pending or in verification (ignored)."""
    refusals: int
    """Announced bundles refused (verification failed or timed out, sha mismatch, misfit, rolled back) plus
    malformed messages."""
    last_refusal: str
    """Reason of the most recent refusal ("" = none)."""
    superseded: int
    """Announcements or verified bundles replaced by a newer one before they ran, or dropped by a rollback."""
    swaps: int
    """Announced bundles switched to."""
    rollbacks: int
    """Rollbacks made (automatic + manual)."""
    auto_rollbacks: int
    """Rollbacks made because the success rate dropped."""
    last_rollback: str
    """Reason of the most recent rollback ("" = none)."""
    blocked: tuple[str, ...]
    """sha256 of rolled-back bundles that are not re-adopted."""
    last_swap_latency_s: float | None
    """Announcement received → first tick on the new bundle, of the latest swap, s (None before the first)."""
    last_verify_s: float | None
    """Duration of the latest finished verification, s (None before the first)."""
    active_episodes: int
    """Judged episodes of the active bundle in its window."""
    active_success_rate: float | None
    """Success rate of the active bundle over its window (None without episodes)."""
    previous_success_rate: float | None
    """Success rate of the previous bundle over its window (None without one or without episodes)."""
    latest_event: str
    """"", "swap", "refused" or "rollback": what happened last (a refusal or rollback is shown as WARN)."""
    errors: int
    """Internal errors caught on the control thread's calls (each one left the running bundle in place)."""
    last_error: str
    """The most recent internal error ("" = none)."""

    def entry(self) -> DiagnosticEntry:
        """The `/diagnostics` entry (`bundle_swap`): WARN after a refusal or rollback, or on internal errors."""
        level = WARN if self.latest_event in ("refused", "rollback") or self.errors else OK
        parts = [f"active {self.active_sha256[:12]} ({self.active_origin})", f"{self.swaps} swaps"]
        if self.pending_sha256:
            parts.append(f"pending {self.pending_sha256[:12]} (next episode)")
        if self.verifying_sha256:
            parts.append(f"verifying {self.verifying_sha256[:12]}")
        if self.latest_event == "refused":
            parts.append(f"last announcement refused: {self.last_refusal}")
        elif self.latest_event == "rollback":
            parts.append(f"rolled back: {self.last_rollback}")
        if self.errors:
            parts.append(f"{self.errors} internal errors: {self.last_error}")
        return DiagnosticEntry("bundle_swap", level, "; ".join(parts), self.values())

    def values(self) -> dict[str, str]:
        """Key/value strings for `/diagnostics` (`swap/<name>`)."""

        def num(value: float | None, scale: float = 1.0) -> str:
            return "" if value is None else f"{scale * value:.6g}"

        return {
            "swap/active_sha256": self.active_sha256,
            "swap/active_origin": self.active_origin,
            "swap/previous_sha256": self.previous_sha256,
            "swap/pending_sha256": self.pending_sha256,
            "swap/verifying_sha256": self.verifying_sha256,
            "swap/announcements": str(self.announcements),
            "swap/malformed": str(self.malformed),
            "swap/duplicates": str(self.duplicates),
            "swap/refusals": str(self.refusals),
            "swap/last_refusal": self.last_refusal,
            "swap/superseded": str(self.superseded),
            "swap/swaps": str(self.swaps),
            "swap/rollbacks": str(self.rollbacks),
            "swap/auto_rollbacks": str(self.auto_rollbacks),
            "swap/last_rollback": self.last_rollback,
            "swap/blocked": ",".join(self.blocked),
            "swap/last_latency_ms": num(self.last_swap_latency_s, 1e3),
            "swap/last_verify_ms": num(self.last_verify_s, 1e3),
            "swap/active_episodes": str(self.active_episodes),
            "swap/active_success_rate": num(self.active_success_rate),
            "swap/previous_success_rate": num(self.previous_success_rate),
            "swap/errors": str(self.errors),
        }

    def to_json(self) -> dict[str, Any]:
        """Plain values for the loop summary (`stats_path`)."""
        out = asdict(self)
        out["blocked"] = list(self.blocked)
        return out
