"""Batch streams for `Algorithm.update`: one buffer, or an online/dataset mix; numpy → torch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.core.types import Batch
from robot_rl.data.chunks import gather_chunks
from robot_rl.data.nstep import with_cost_sum, with_nstep
from robot_rl.data.replay import ReplayBuffer

NumpyBatch = Batch[npt.NDArray[Any]]


def to_torch(batch: NumpyBatch) -> Batch[torch.Tensor]:
    """The same batch as torch tensors sharing memory (optional fields stay None)."""

    def opt(x: npt.NDArray[Any] | None) -> torch.Tensor | None:
        return None if x is None else torch.from_numpy(x)

    b = batch
    return Batch(
        obs=torch.from_numpy(b.obs),
        action=torch.from_numpy(b.action),
        reward=torch.from_numpy(b.reward),
        next_obs=torch.from_numpy(b.next_obs),
        terminated=torch.from_numpy(b.terminated),
        truncated=torch.from_numpy(b.truncated),
        action_chunk=opt(b.action_chunk),
        obs_history=opt(b.obs_history),
        cost=opt(b.cost),
        intervention=opt(b.intervention),
        source=opt(b.source),
        discount=opt(b.discount),
        cost_sum=opt(b.cost_sum),
    )


def torch_batches(batches: Iterator[NumpyBatch]) -> Iterator[Batch[torch.Tensor]]:
    """`batches` converted with `to_torch` (what `Algorithm.update` consumes)."""
    for b in batches:
        yield to_torch(b)


def concat(parts: list[NumpyBatch]) -> NumpyBatch:
    """Row-wise concatenation; an optional field is kept only where every part has it."""

    def cat(name: str) -> npt.NDArray[Any]:
        return np.concatenate([getattr(p, name) for p in parts])

    def cat_opt(name: str) -> npt.NDArray[Any] | None:
        return None if any(getattr(p, name) is None for p in parts) else cat(name)

    return Batch(
        obs=cat("obs"),
        action=cat("action"),
        reward=cat("reward"),
        next_obs=cat("next_obs"),
        terminated=cat("terminated"),
        truncated=cat("truncated"),
        action_chunk=cat_opt("action_chunk"),
        obs_history=cat_opt("obs_history"),
        cost=cat_opt("cost"),
        intervention=cat_opt("intervention"),
        source=cat_opt("source"),
        discount=cat_opt("discount"),
        cost_sum=cat_opt("cost_sum"),
    )


@dataclass(frozen=True)
class BatchLayout:
    """What each batch row carries beyond its transition, as the learner asks (`requested_layout`)."""

    chunk_size: int = 1
    """H: the actions executed from the row on, `action_chunk [B, H, A]` (1 = none)."""
    obs_history: int = 1
    """T_o: the observations up to the row, `obs_history [B, T_o, O]` (1 = none)."""
    n_step: int = 1
    """n-step rows (`robot_rl.data.nstep`: k ≤ n rewards summed, `discount` = γ^k; 1 = one-step rows)."""
    gamma: float = 0.99
    """γ of the n-step sums."""
    cost_horizon: int = 0
    """N: fill `cost_sum` with the sum of the N costs from the row on (`robot_rl.data.nstep.with_cost_sum`; 0 =
    none). Independent of `n_step`: the row's own `cost` and `next_obs` stay one-step."""


def requested_layout(algo: object) -> BatchLayout:
    """The layout an algorithm asks its batches for: its `chunk_size`, `obs_history`, `n_step`, `gamma` and
    `cost_horizon` attributes (the defaults where it has none, as SAC and TD3: their batches are gathered exactly as
    before, at no extra cost)."""
    return BatchLayout(
        int(getattr(algo, "chunk_size", 1)),
        int(getattr(algo, "obs_history", 1)),
        int(getattr(algo, "n_step", 1)),
        float(getattr(algo, "gamma", 0.99)),
        int(getattr(algo, "cost_horizon", 0)),
    )


def _gather(buffer: ReplayBuffer, idx: npt.NDArray[np.int64], layout: BatchLayout) -> NumpyBatch:
    batch = gather_chunks(buffer, idx, layout.chunk_size, layout.obs_history)
    if layout.cost_horizon > 0:
        batch = with_cost_sum(batch, buffer, idx, layout.cost_horizon)
    return batch if layout.n_step == 1 else with_nstep(batch, buffer, idx, layout.n_step, layout.gamma)


def sample_batches(
    buffer: ReplayBuffer, batch_size: int, rng: np.random.Generator, layout: BatchLayout = BatchLayout()
) -> Iterator[NumpyBatch]:
    """Endless uniform batches from `buffer`, with `action_chunk [B, H, A]`/`obs_history [B, T, O]` filled when
    the layout's `chunk_size`/`obs_history` > 1 (never across an episode boundary: `robot_rl.data.chunks`) and
    n-step rows when its `n_step` > 1 (`robot_rl.data.nstep`). With the default layout it is
    `buffer.iterate(batch_size, rng)` draw for draw."""
    while True:
        yield _gather(buffer, buffer.sample_indices(batch_size, rng), layout)


def offline_rows(ratio: float, batch_size: int) -> int:
    """Rows of a mixed batch drawn from the dataset: `round(ratio * batch_size)` (Python's round-half-even)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"demo ratio must be in [0, 1], got {ratio}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return round(ratio * batch_size)


def mixed_batches(
    online: ReplayBuffer,
    offline: ReplayBuffer,
    ratio: float,
    batch_size: int,
    rng: np.random.Generator,
    layout: BatchLayout = BatchLayout(),
) -> Iterator[NumpyBatch]:
    """Endless batches of `batch_size` rows: `offline_rows(ratio, batch_size)` uniformly from `offline` (the
    dataset), the rest uniformly from `online`; online rows first. `ratio = 0.5` is RLPD's symmetric sampling
    (Ball et al. 2023). Each row keeps its buffer's `source` code, so a learner can tell them apart.

    Indices are drawn online first, then offline, from the one `rng` (so a seeded run is reproducible).
    The `layout` fills chunks, histories and n-step rows as `sample_batches` does, each buffer within its own
    episodes.
    """
    n_off = offline_rows(ratio, batch_size)
    n_on = batch_size - n_off
    if n_off and len(offline) == 0:
        raise RuntimeError("mixed sampling: the dataset buffer is empty")
    while True:
        parts = []
        if n_on:
            parts.append(_gather(online, online.sample_indices(n_on, rng), layout))
        if n_off:
            parts.append(_gather(offline, offline.sample_indices(n_off, rng), layout))
        yield parts[0] if len(parts) == 1 else concat(parts)
