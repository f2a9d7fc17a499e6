"""SAC configuration: the classic recipe by default, a CrossQ-style sample-efficient preset."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SACConfig:
    """Soft Actor-Critic hyperparameters (defaults follow the paper and Stable-Baselines3)."""

    recipe: Literal["classic", "crossq"] = "classic"
    """Label of the preset this config came from; `SACConfig.preset(name)` builds each one."""
    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor MLP."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of each critic MLP."""
    num_critics: int = 2
    """Critic ensemble size; targets use the minimum over members (2 = clipped double Q)."""
    critic_norm: Literal["none", "layer", "batch_renorm"] = "none"
    """Normalization inside critics; `batch_renorm` is what lets CrossQ drop the target network."""
    use_target_network: bool = True
    """Polyak-averaged target critics; CrossQ turns them off and normalizes the joint batch instead."""
    renorm_warmup_steps: int = 100_000
    """Critic updates during which batch renorm behaves as plain batch norm (CrossQ)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak coefficient for target critics."""
    actor_lr: float = 3e-4
    """Actor learning rate (Adam)."""
    critic_lr: float = 3e-4
    """Critic learning rate (Adam)."""
    alpha_lr: float = 3e-4
    """Temperature learning rate (Adam on log α)."""
    adam_beta1: float = 0.9
    """Adam β1 for all optimizers (CrossQ uses 0.5)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    utd_ratio: int = 1
    """Gradient steps per environment step (update-to-data ratio)."""
    policy_delay: int = 1
    """Actor and temperature are updated every `policy_delay` critic updates."""
    init_alpha: float = 1.0
    """Initial entropy temperature α."""
    target_entropy: float | None = None
    """Entropy target; None means −action_dim (SAC's heuristic)."""
    log_std_min: float = -20.0
    """Lower clamp of the actor's log std."""
    log_std_max: float = 2.0
    """Upper clamp of the actor's log std."""
    obs_normalization: bool = False
    """Keep running observation mean/std inside the policy (exported with it)."""
    obs_std_floor: float = 1e-2
    """Smallest std an observation dimension is divided by when `obs_normalization` is on, in its own units: a
    dimension that hardly varies in the data would otherwise turn a millimetre of difference at run time into
    thousands of standard deviations (and saturate the actor at its first update)."""

    compile_update: bool = False
    """Compile the update's forward passes and losses with `torch.compile` (robot_rl/algos/compiled.py): same
    arithmetic fused, a one-off compile of about a minute at the first update, and eager again if compiling fails
    (counted in the `compile/*` statistics). Speed on this machine: docs/performance.md."""

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.gamma < 1.0:
            problems.append(f"gamma must be in [0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            problems.append(f"tau must be in (0, 1], got {self.tau}")
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                problems.append(f"{name} must be positive and finite, got {v}")
        for name in ("batch_size", "utd_ratio", "policy_delay", "num_critics"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_critics < 2 and self.use_target_network:
            problems.append("num_critics must be >= 2 for clipped double-Q")
        if not self.actor_hidden or not self.critic_hidden or min(self.actor_hidden + self.critic_hidden) < 1:
            problems.append("hidden layer widths must be non-empty and positive")
        if not 0.0 <= self.adam_beta1 < 1.0:
            problems.append(f"adam_beta1 must be in [0, 1), got {self.adam_beta1}")
        if self.critic_norm != "batch_renorm" and not self.use_target_network:
            problems.append("use_target_network=False is only stable with critic_norm='batch_renorm' (CrossQ)")
        if self.critic_norm not in ("none", "layer", "batch_renorm"):
            problems.append(f"critic_norm must be none, layer or batch_renorm, got {self.critic_norm!r}")
        if self.recipe not in ("classic", "crossq"):
            problems.append(f"recipe must be classic or crossq, got {self.recipe!r}")
        if self.log_std_min >= self.log_std_max:
            problems.append("log_std_min must be below log_std_max")
        if not (math.isfinite(self.obs_std_floor) and self.obs_std_floor >= 0):
            problems.append(f"obs_std_floor must be >= 0 and finite, got {self.obs_std_floor}")
        if problems:
            raise ValueError("invalid SACConfig: " + "; ".join(problems))

    @staticmethod
    def preset(name: str) -> SACConfig:
        """The named recipe: `classic` (Haarnoja et al.) or `crossq` (Bhatt et al. 2024, ICLR)."""
        if name == "classic":
            return SACConfig()
        if name == "crossq":
            # CrossQ: batch-renormalized critics evaluated on the joint (s,a) ∪ (s',a') batch, no
            # target network, actor every 3rd step, Adam β1 = 0.5 and lr 1e-3 (paper, table 4). The
            # paper's 2048-wide critics cost ~16x the FLOPs; on 2 CPU cores 256-wide ones win on
            # wall-clock (docs/benchmarks/sac_vs_sb3.md).
            return SACConfig(
                recipe="crossq",
                critic_norm="batch_renorm",
                use_target_network=False,
                policy_delay=3,
                adam_beta1=0.5,
                actor_lr=1e-3,
                critic_lr=1e-3,
                alpha_lr=1e-3,
            )
        raise ValueError(f"unknown SAC recipe {name!r}; choose 'classic' or 'crossq'")

    def replace(self, **changes: object) -> SACConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
