"""Residual TD3 configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass

from robot_rl.algos.td3.config import TD3Config


@dataclass(frozen=True)
class ResidualConfig(TD3Config):
    """A residual actor on top of a frozen base, trained with TD3 (see `robot_rl.residual` for bases). The TD3
    fields keep their meaning, applied to the residual: exploration and target smoothing noise are in residual
    units, before `residual_scale`."""

    base: str = "expert"
    """The frozen base: a bundle directory, a training-run directory or `expert` (the env's scripted expert)."""
    residual_scale: float = 0.2
    """Largest correction, in normalized action units: executed = clip(a_base + scale · tanh(actor), -1, 1)."""
    critic_norm: str = "layer"
    """Critic normalization: `layer` (LayerNorm, stable at high update-to-data ratios), `none` or `batch_renorm`."""
    n_step: int = 3
    """Steps summed into each TD target (n-step returns that stop at an episode's end; a truncated end still
    bootstraps): faster credit assignment for sparse task rewards."""
    critic_warmup_updates: int = 0
    """Critic updates before the actor moves at all (the critic first learns the base's value, so the first actor
    steps follow a meaningful gradient instead of an untrained critic's)."""
    actor_lr: float = 3e-4
    """Residual actor learning rate (Adam; smaller than TD3's default: the base already acts well)."""
    residual_l2: float = 0.0
    """Weight of the residual's mean square in the actor loss, the critic term normalized by its own scale
    (TD3+BC's λ, `losses.anchored_actor_loss`): > 0 keeps the residual at zero wherever the critic does not
    clearly pay for a correction (0 = the plain TD3 / SAC actor loss)."""
    critic_lr: float = 3e-4
    """Critic learning rate (Adam)."""
    obs_normalization: bool = True
    """Running mean/std of the observation and the proposal inside the policy."""

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        if not (math.isfinite(self.residual_scale) and 0.0 < self.residual_scale <= 2.0):
            problems.append(f"residual_scale must be in (0, 2], got {self.residual_scale}")
        if self.n_step < 1:
            problems.append(f"n_step must be >= 1, got {self.n_step}")
        if not (math.isfinite(self.residual_l2) and self.residual_l2 >= 0.0):
            problems.append(f"residual_l2 must be finite and >= 0, got {self.residual_l2}")
        if self.critic_warmup_updates < 0:
            problems.append(f"critic_warmup_updates must be >= 0, got {self.critic_warmup_updates}")
        if self.critic_norm not in ("none", "layer", "batch_renorm"):
            problems.append(f"critic_norm must be none, layer or batch_renorm, got {self.critic_norm!r}")
        if problems:
            raise ValueError("invalid ResidualConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class ResidualSACConfig(ResidualConfig):
    """A residual actor on a frozen base trained with SAC: a tanh-Gaussian residual, entropy-regularized with an
    automatic temperature (the TD3 fields `exploration_noise`, `target_noise*` and `policy_delay` are unused)."""

    init_alpha: float = 0.1
    """Initial entropy temperature α (small: the base already acts well; exploration is a correction)."""
    alpha_lr: float = 3e-4
    """Temperature learning rate (Adam)."""
    target_entropy: float | None = None
    """Entropy target of the residual distribution (None = −A, the usual heuristic)."""
    init_log_std: float = -1.0
    """Initial log std of the residual before tanh (the mean starts at 0): exp(-1) ≈ 0.37, so the first
    corrections stay well inside `residual_scale`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        for name in ("init_alpha", "alpha_lr"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                problems.append(f"{name} must be positive and finite, got {v}")
        if not math.isfinite(self.init_log_std):
            problems.append(f"init_log_std must be finite, got {self.init_log_std}")
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            problems.append(f"target_entropy must be finite or None, got {self.target_entropy}")
        if problems:
            raise ValueError("invalid ResidualSACConfig: " + "; ".join(problems))
