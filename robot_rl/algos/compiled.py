"""`torch.compile` for the pure loss computations of an update, with a fallback to eager that is never silent.

An update's loss function (forward of the networks and the loss, no optimizer, no module-state changes) is
compiled on its first call; autograd then runs the compiled backward too. Compilation needs a C++ toolchain and
can fail on a platform or torch build the project was not tested on: then the same function runs eagerly from that
call on, the reason is kept (`fallback_reason`), counted and warned about once. A failure inside a compiled call
that already ran is rare (guards recompile instead), and the eager call after it starts from the same inputs: loss
functions here have no side effects on their inputs.

What compiling changes: the same arithmetic, fused, so results agree with eager within float32 rounding; random
draws inside the function (`randn_like`) come from Inductor's generator, seeded from torch's, so a compiled run is
reproducible under a seed but not draw-for-draw equal to an eager one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)


class MaybeCompiled(Generic[P, R]):
    """`fn`, compiled with `torch.compile` when `enabled`, eager after any compile failure (see module docstring)."""

    def __init__(self, fn: Callable[P, R], name: str, enabled: bool) -> None:
        self.fn, self.name, self.enabled = fn, name, enabled
        self._compiled: Callable[P, R] | None = None
        self.fallback_reason = ""
        """Why this function runs eagerly although compilation was asked for ("" = it did not fall back)."""
        self.fallbacks = 0
        """Times a compiled call failed and the eager function ran instead."""
        self._lock = threading.Lock()

    @property
    def compiled(self) -> bool:
        """True while calls go through the compiled function."""
        return self.enabled and not self.fallback_reason

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.compiled:
            if self._compiled is None:
                with self._lock:
                    if self._compiled is None:
                        self._compiled = torch.compile(self.fn, dynamic=False)
            try:
                return self._compiled(*args, **kwargs)
            except Exception as exc:  # any compiler failure: eager is always correct
                self._fall_back(exc)
        return self.fn(*args, **kwargs)

    def _fall_back(self, exc: BaseException) -> None:
        self.fallbacks += 1
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        self.fallback_reason = f"{type(exc).__name__}: {first_line}"
        log.warning("torch.compile of %s failed, running it eagerly from now on (%s)", self.name, self.fallback_reason)

    def stats(self) -> dict[str, Any]:
        """`compile/<name>/...` figures for the training log: 1.0 while compiled, and the fallback count."""
        return {f"compile/{self.name}/active": float(self.compiled), f"compile/{self.name}/fallbacks": self.fallbacks}
