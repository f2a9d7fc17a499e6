"""LAC configuration: defaults from Han et al. 2020 and their reference implementation where they apply."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LACConfig:
    """Lyapunov actor-critic (Han et al. 2020): minimizes the env's cost under a Lyapunov decrease constraint."""

    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the Gaussian actor MLP (the same actor, and deployable policy, as SAC's)."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the Lyapunov critic's MLP f(s, a)."""
    critic_features: int = 64
    """Output size of f(s, a); the critic is L_c(s, a) = ‖f(s, a)‖², a sum of this many squares (so L_c ≥ 0)."""
    alpha3: float = 1.0
    """α₃, the decrease rate of the stability condition L_c(s', π(s')) − L_c(s, a) + α₃·c ≤ 0 (Han eq. 11)."""
    horizon: int = 0
    """Lyapunov candidate: 0 = infinite-horizon, the TD target c + γ·L_c'(s', π(s')) (Han eq. 8); N > 0 = the sum
    of the next N costs from the replay, c_t + … + c_{t+N−1} (Han eq. 9; no bootstrap, no γ)."""
    gamma: float = 0.995
    """Discount γ of the infinite-horizon candidate (Han et al. use 0.995)."""
    tau: float = 0.005
    """Polyak coefficient of the target Lyapunov critic."""
    init_lambda: float = 1.0
    """Initial Lagrange multiplier λ of the decrease constraint."""
    lambda_max: float = 1.0
    """Upper bound of λ (the reference implementation clips λ to [0, 1]): the constraint weighs at most as much as
    a unit of cost-to-go, so the entropy term is never drowned out."""
    lambda_lr: float = 1e-4
    """Learning rate of log λ (Adam, gradient ascent on the mean violation; Han eq. 14)."""
    init_alpha: float = 1.0
    """Initial entropy temperature α."""
    alpha_lr: float = 1e-4
    """Learning rate of log α (Adam; as in SAC)."""
    target_entropy: float | None = None
    """Entropy target of the temperature; None means −action_dim (SAC's heuristic)."""
    actor_lr: float = 1e-4
    """Actor learning rate (Adam; Han et al. use 1e-4)."""
    critic_lr: float = 3e-4
    """Lyapunov critic learning rate (Adam)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    utd_ratio: int = 1
    """Gradient steps per environment step (update-to-data ratio)."""
    log_std_min: float = -20.0
    """Lower clamp of the actor's log std."""
    log_std_max: float = 2.0
    """Upper clamp of the actor's log std."""
    obs_normalization: bool = False
    """Keep running observation mean/std inside the policy (exported with it)."""
    obs_std_floor: float = 1e-2
    """Smallest std an observation dimension is divided by when `obs_normalization` is on, in its own units (a
    dimension that hardly varies would otherwise saturate the actor at its first update)."""

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.gamma < 1.0:
            problems.append(f"gamma must be in [0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            problems.append(f"tau must be in (0, 1], got {self.tau}")
        if not (math.isfinite(self.alpha3) and self.alpha3 >= 0):
            problems.append(f"alpha3 must be >= 0 and finite, got {self.alpha3}")
        for name in ("actor_lr", "critic_lr", "alpha_lr", "lambda_lr", "init_alpha", "init_lambda", "lambda_max"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                problems.append(f"{name} must be positive and finite, got {v}")
        if self.init_lambda > self.lambda_max:
            problems.append(f"init_lambda {self.init_lambda} is above lambda_max {self.lambda_max}")
        for name in ("batch_size", "utd_ratio", "critic_features"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.horizon < 0:
            problems.append(f"horizon must be >= 0 (0 = infinite-horizon TD candidate), got {self.horizon}")
        if not self.actor_hidden or not self.critic_hidden or min(self.actor_hidden + self.critic_hidden) < 1:
            problems.append("hidden layer widths must be non-empty and positive")
        if self.log_std_min >= self.log_std_max:
            problems.append("log_std_min must be below log_std_max")
        if not (math.isfinite(self.obs_std_floor) and self.obs_std_floor >= 0):
            problems.append(f"obs_std_floor must be >= 0 and finite, got {self.obs_std_floor}")
        if problems:
            raise ValueError("invalid LACConfig: " + "; ".join(problems))

    def replace(self, **changes: object) -> LACConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
