"""MeanFlow configuration."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from robot_rl.algos.chunked.config import ChunkedConfig


@dataclass(frozen=True)
class MeanFlowConfig(ChunkedConfig):
    """MeanFlow: the denoiser predicts the average velocity u(z, r, t) over [r, t], so 1 step (1 network
    evaluation) maps noise to an action chunk; 2 steps are an option."""

    sampler_steps: int = 1
    """K: MeanFlow steps per chunk at evaluation and export (1 = one network evaluation; 2 = two half intervals)."""
    time_sampling: Literal["logit_normal", "uniform"] = "logit_normal"
    """Distribution of the two training times, sorted so that r ≤ t (Geng et al. 2025, §4.3)."""
    logit_mean: float = -0.4
    """Mean of the logit-normal time distribution (the paper's −0.4)."""
    logit_std: float = 1.0
    """Standard deviation of the logit-normal time distribution."""
    equal_fraction: float = 0.25
    """Share of each batch with r = t (an empty interval: plain flow matching there). The paper's best on
    ImageNet was 75%; on the action-chunk tasks here, with a few thousand updates, 25% leaves more of the batch to
    the long intervals the 1-step sampler uses (it raised PandaReachAround's 1-step success in our runs)."""
    adaptive_power: float = 0.0
    """p of the adaptive loss weight `1 / (‖Δ‖² + adaptive_eps)^p` (§4.3; 0 = plain squared error). With the
    model tangent the target is a plain regression and p = 0 did as well or better than the paper's p = 1 here;
    with the conditional tangent and time scale 1000, p = 0 diverged (the weight had kept that target in check)."""
    adaptive_eps: float = 1e-3
    """c of the adaptive loss weight (keeps it finite as the error vanishes)."""
    tangent: Literal["model", "conditional"] = "model"
    """The velocity along which the JVP differentiates u: `model` = the network's own instantaneous velocity
    u(z, t, t) (Improved MeanFlow, Geng et al. 2025b, arXiv 2512.02012), so the regression target depends on the
    data only through ε − x; `conditional` = the per-sample ε − x (the original MeanFlow, eq. 8). On the
    benchmark tasks the conditional tangent's target noise left the 1-step sampler well short of 10-step flow."""
    time_scale: float = 1.0
    """Factor on t and t − r before the sinusoidal embedding. The loss differentiates u with respect to t, and
    the flow learner's 1000 turns the embedding's fastest frequency into 1000 rad per unit t: the JVP target's
    ∂u/∂t then dominated and training stalled. 1 keeps the embedding smooth in t."""

    prediction: Literal["velocity", "sample"] = "sample"
    """What the network outputs: the chunk F that the jump from t lands on, with u = (z_t − F)/t (`sample`, the
    default: the x₀-style parametrization `flow_x0` uses for flow; the loss is then in data units and one step
    returns F, clipped to [-1, 1]), or the average velocity u (`velocity`, the paper's: one step is ε − u, so the
    network must reproduce the noise to cancel it). `sample` is the default because its 1-step sampler met the
    success targets that `velocity`'s missed (bench/generative_success.py runs both: `meanflow_x0`, `meanflow`)."""
    teacher: str = ""
    """A finished `flow` training run (its directory) to distill from: its velocity field replaces the per-sample
    ε − x₀ in the MeanFlow target, so the student learns the teacher's deterministic noise-to-chunk map
    (`robot_rl.algos.meanflow.teacher`). Trained on the teacher's dataset with the same H, T_o and normalization
    (checked at the first update). Empty: MeanFlow from the data alone."""

    SAVED_WITHOUT: ClassVar[Mapping[str, Any]] = MappingProxyType({"prediction": "velocity"})
    """Runs saved before `prediction` existed trained the velocity output (robot_rl.core.config.SAVED_WITHOUT)."""

    def problems(self) -> list[str]:
        out = super().problems()
        if self.sampler_steps < 1:
            out.append(f"sampler_steps must be >= 1, got {self.sampler_steps}")
        if self.time_sampling not in ("logit_normal", "uniform"):
            out.append(f"time_sampling must be logit_normal or uniform, got {self.time_sampling!r}")
        if not (math.isfinite(self.logit_mean) and math.isfinite(self.logit_std) and self.logit_std > 0):
            out.append(f"logit_mean must be finite and logit_std positive, got {self.logit_mean}, {self.logit_std}")
        if not 0.0 <= self.equal_fraction <= 1.0:
            out.append(f"equal_fraction must be in [0, 1], got {self.equal_fraction}")
        if not (math.isfinite(self.adaptive_power) and self.adaptive_power >= 0):
            out.append(f"adaptive_power must be >= 0 and finite, got {self.adaptive_power}")
        if not (math.isfinite(self.adaptive_eps) and self.adaptive_eps > 0):
            out.append(f"adaptive_eps must be positive and finite, got {self.adaptive_eps}")
        if self.prediction not in ("velocity", "sample"):
            out.append(f"prediction must be velocity or sample, got {self.prediction!r}")
        if self.tangent not in ("model", "conditional"):
            out.append(f"tangent must be model or conditional, got {self.tangent!r}")
        if not (math.isfinite(self.time_scale) and self.time_scale > 0):
            out.append(f"time_scale must be positive and finite, got {self.time_scale}")
        return out
