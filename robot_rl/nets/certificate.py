"""What a learner offers besides its policy: a stability certificate the robot side can evaluate.

A learner (e.g. LAC) may expose `lyapunov_module() -> nn.Module` and `lyapunov_alpha3`; the module maps a raw
observation `[B, O]` and a **physical** action `[B, A]` to `L(s, a) [B] ≥ 0`, with the observation normalizer and
the physical → normalized action map inside (principle 6: nothing downstream re-implements them). The exporter
writes it as the bundle's `lyapunov.onnx` (`robot_rl.export.certificate`), next to the policy, never inside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class LyapunovCertificate:
    """A learner's Lyapunov critic in deployable units, and the decrease rate it was trained for."""

    module: nn.Module
    """`(obs [B, O] raw, action [B, A] physical) → L [B] ≥ 0`, float32, deterministic."""
    alpha3: float
    """α₃ ≥ 0 of the trained decrease condition `L(s', π(s')) − L(s, a) + α₃·c ≤ 0`."""

    def __post_init__(self) -> None:
        if not isinstance(self.module, nn.Module):
            raise TypeError(f"a Lyapunov certificate's module must be an nn.Module, got {type(self.module).__name__}")
        a = self.alpha3
        if isinstance(a, bool) or not isinstance(a, int | float) or not math.isfinite(a) or a < 0:
            raise ValueError(f"a Lyapunov certificate's alpha3 must be a finite number >= 0, got {a!r}")


def certificate_of(learner: Any) -> LyapunovCertificate | None:
    """The learner's Lyapunov certificate (`lyapunov_module()`, `lyapunov_alpha3`), or None when it has none."""
    make = getattr(learner, "lyapunov_module", None)
    if not callable(make):
        return None
    return LyapunovCertificate(module=make(), alpha3=float(learner.lyapunov_alpha3))
