"""Config fields every generative chunk learner has (diffusion, flow, meanflow extend it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ChunkedConfig:
    """Observation history, action chunk, denoiser, optimizer and EMA of a generative chunk policy."""

    obs_history: int = 2
    """T_o: observations the policy conditions on (the current one and T_o − 1 before it; 2 in Diffusion Policy)."""
    chunk_size: int = 16
    """H: actions predicted per query (the action chunk)."""
    execution_horizon: int = 8
    """H_a: actions of each chunk executed before replanning (receding horizon), 1 ≤ H_a ≤ H."""
    denoiser: Literal["mlp", "unet"] = "mlp"
    """Denoiser network: `mlp` (FiLM residual MLP over the flattened chunk, the CPU default) or `unet` (1-D
    temporal-conv U-Net with FiLM, Diffusion Policy's)."""
    width: int = 256
    """Hidden width of the MLP denoiser."""
    depth: int = 3
    """FiLM residual blocks of the MLP denoiser."""
    unet_widths: tuple[int, ...] = (64, 128)
    """Channel widths per U-Net level (len − 1 downsamplings)."""
    cond_width: int = 128
    """Width of the conditioning vector (time embedding + observation features) FiLM reads."""
    time_dim: int = 64
    """Size of the sinusoidal time embedding."""
    lr: float = 3e-4
    """Learning rate (AdamW)."""
    weight_decay: float = 1e-6
    """Decoupled weight decay (AdamW)."""
    grad_clip_norm: float = 1.0
    """Clip the gradient's global norm to this (0 = no clipping)."""
    batch_size: int = 256
    """Chunks per gradient step."""
    ema_decay: float = 0.999
    """Decay of the EMA weights that are evaluated and exported (warmed up as min(decay, (1+n)/(10+n)))."""
    obs_normalization: Literal["zscore", "minmax", "none"] = "zscore"
    """Observation normalization inside the policy, from the dataset's statistics."""
    obs_std_floor: float = 1e-2
    """Smallest scale an observation dimension is divided by, in its own units (z-score: std floor; min-max: a
    half range below it is left unscaled). A dimension that hardly varies in the demonstrations (a resting
    object's orientation, a table height) would otherwise turn a millimetre of difference at run time into
    hundreds of standard deviations, far outside anything the policy was trained on."""
    action_normalization: Literal["data", "spec"] = "data"
    """`data`: min-max normalize actions to [-1, 1] over the dataset's range (Diffusion Policy's choice; tighter
    than the robot's range when the demonstrations use a part of it); `spec`: the spec's physical range only."""

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(f"invalid {type(self).__name__}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Why this config is invalid (empty when it is valid); subclasses add their own."""
        out = []
        for name in ("obs_history", "chunk_size", "width", "depth", "cond_width", "batch_size"):
            if getattr(self, name) < 1:
                out.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.execution_horizon <= self.chunk_size:
            out.append(f"execution_horizon must be in [1, chunk_size={self.chunk_size}], got {self.execution_horizon}")
        if self.time_dim < 4 or self.time_dim % 2:
            out.append(f"time_dim must be even and >= 4, got {self.time_dim}")
        if not self.unet_widths or min(self.unet_widths) < 1:
            out.append(f"unet_widths must be non-empty and positive, got {self.unet_widths}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            out.append(f"lr must be positive and finite, got {self.lr}")
        for name in ("weight_decay", "grad_clip_norm", "obs_std_floor"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                out.append(f"{name} must be >= 0 and finite, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            out.append(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.denoiser not in ("mlp", "unet"):
            out.append(f"denoiser must be mlp or unet, got {self.denoiser!r}")
        if self.obs_normalization not in ("zscore", "minmax", "none"):
            out.append(f"obs_normalization must be zscore, minmax or none, got {self.obs_normalization!r}")
        if self.action_normalization not in ("data", "spec"):
            out.append(f"action_normalization must be data or spec, got {self.action_normalization!r}")
        return out
