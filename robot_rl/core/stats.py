"""Summary statistics over seeds: the interquartile mean and its bootstrap interval (numpy only).

Agarwal et al. 2021 ("Deep RL at the Edge of the Statistical Precipice") recommend the IQM with a bootstrap
confidence interval over a handful of seeds instead of the mean ± std: it ignores the luckiest and unluckiest
quarter of the runs without being as wasteful as the median. Benchmarks and sweeps report both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def iqm(values: Sequence[float] | npt.NDArray[np.floating]) -> float:
    """Interquartile mean: the mean of the middle half (floor(n/4) values dropped at each end; the mean for n < 4)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.size == 0:
        raise ValueError("iqm of an empty sample")
    cut = len(x) // 4
    return float(x[cut : len(x) - cut].mean())


def bootstrap_ci(
    values: Sequence[float] | npt.NDArray[np.floating], n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the IQM over seeds (a single value: that value twice).

    Seeded, so the same values always give the same interval (a results table must not change on re-render).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("bootstrap interval of an empty sample")
    if len(x) < 2:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    stats = [iqm(rng.choice(x, size=len(x), replace=True)) for _ in range(n_boot)]
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)
