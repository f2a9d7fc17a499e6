"""Turn untrusted inputs (commands, measurements, clock values) into checked float64 vectors and times."""

from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
"""A float64 numpy array."""

_REAL_KINDS = frozenset("fiu")  # float, signed, unsigned; bool, complex, object and strings are refused


def as_vector(value: object, n: int) -> tuple[F64 | None, str]:
    """A fresh float64 copy of `value` if it is `n` real numbers, else (None, why). Never raises.

    Non-finite entries are kept: the caller decides what NaN means (a command: hold; a measurement: none).
    """
    if type(value) is np.ndarray and value.dtype == np.float64 and value.shape == (n,):
        return value.copy(), ""  # the hot path: one copy, so later changes by the caller cannot reach us
    if isinstance(value, np.ndarray):
        arr: np.ndarray = value
    elif isinstance(value, list | tuple):
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError, OverflowError) as exc:
            return None, f"cannot read {type(value).__name__} as numbers ({exc})"
    else:
        return None, f"expected {n} numbers, got {type(value).__name__}"
    if arr.dtype.kind not in _REAL_KINDS:
        return None, f"dtype {arr.dtype} is not a real number type"
    if arr.shape != (n,):
        return None, f"shape {arr.shape}, expected ({n},)"
    with np.errstate(over="ignore", invalid="ignore"):  # float128 beyond float64 becomes inf: rejected later
        return np.array(arr, dtype=np.float64, copy=True), ""


def all_finite(vec: F64) -> bool:
    """True when every entry is finite (count_nonzero is cheaper than .all() on short vectors)."""
    return bool(np.count_nonzero(np.isfinite(vec)) == vec.size)


def as_measurement(value: object, n: int) -> F64 | None:
    """A valid joint measurement (n finite numbers) or None: NaN anywhere means "no valid measurement"."""
    if value is None:
        return None
    vec, _ = as_vector(value, n)
    if vec is None or not all_finite(vec):
        return None
    return vec


def as_time(value: object) -> float | None:
    """A finite time in seconds, or None for anything else (None, NaN, ±Inf, strings, bools)."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        try:
            t = float(value)
        except (OverflowError, ValueError):
            return None
        return t if math.isfinite(t) else None
    return None
