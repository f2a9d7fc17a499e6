"""Matmul FLOPs of `Algorithm.update` calls, read from the shapes its matmuls are dispatched with.

`update_flops(algo, batches)` runs real `update` calls under a `TorchDispatchMode` that records every
matmul-family op below autograd (so the backward's matmuls are seen as the ops they are): `mm`, `addmm`, `bmm`,
`baddbmm`, `mv`, `addmv`, and convolutions (forward and backward, as their equivalent GEMMs). Each is counted as
2·batch·m·k·n FLOPs (a multiply and an add per term; a bias add is not counted), the convention of
`torch.utils.flop_counter`, whose total is kept next to ours as a cross-check.

What this counts is what the learner asked the CPU to multiply: an input that needs no gradient gets no
grad-input matmul, a frozen critic no weight-gradient matmul. Pointwise work, reductions and the optimizer step are
not FLOPs here (they are memory-bound; `bench/roofline.py` times them with the profiler instead).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from robot_rl.core.types import Batch

_aten = torch.ops.aten
_MM = {_aten.mm: "mm", _aten.addmm: "addmm", _aten.bmm: "bmm", _aten.baddbmm: "baddbmm"}
_MV = {_aten.mv: "mv", _aten.addmv: "addmv"}
_CONV = {_aten.convolution, _aten._convolution}


@dataclass(frozen=True)
class MatmulShape:
    """One matmul shape of an update and how often it ran: `[batch, m, k] @ [batch, k, n]`."""

    op: str
    """The aten op: mm, addmm, bmm, baddbmm, mv, addmv, conv, conv_grad_input, conv_grad_weight."""
    m: int
    """Rows of the left operand (and of the result)."""
    k: int
    """The contracted dimension."""
    n: int
    """Columns of the right operand (and of the result)."""
    batch: int
    """Independent matmuls in one call (bmm's batch, a grouped convolution's groups; 1 for mm)."""
    count: int
    """Calls with this shape in the counted update calls."""
    layout: str = "NN"
    """Whether each operand was a transposed view (`T`) or row-major (`N`), left then right; what the BLAS saw."""

    @property
    def flops_each(self) -> int:
        """FLOPs of one call: 2·batch·m·k·n."""
        return 2 * self.batch * self.m * self.k * self.n

    @property
    def flops(self) -> int:
        """FLOPs of all `count` calls."""
        return self.flops_each * self.count

    @property
    def gemm(self) -> tuple[int, int, int, int, str]:
        """`(m, k, n, batch, layout)`: the plain GEMM this op times as (addmm and mm of one shape are one GEMM)."""
        return (self.m, self.k, self.n, self.batch, self.layout)

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "m": self.m,
            "k": self.k,
            "n": self.n,
            "batch": self.batch,
            "count": self.count,
            "layout": self.layout,
            "flops": self.flops,
        }


@dataclass(frozen=True)
class UpdateFlops:
    """Matmul FLOPs of `calls` consecutive `update` calls, and the shapes they came from."""

    total: int
    """Matmul FLOPs of all counted calls (Σ shape.flops)."""
    calls: int
    """`update` calls counted (a learner with a delayed actor needs a whole cycle for a fair per-call figure)."""
    shapes: tuple[MatmulShape, ...]
    """Every distinct (op, m, k, n, batch, layout), most FLOPs first."""
    flop_counter_total: int
    """`torch.utils.flop_counter.FlopCounterMode`'s total over the same calls (a cross-check of `total`)."""

    @property
    def per_call(self) -> float:
        """Mean matmul FLOPs of one `update` call."""
        return self.total / self.calls

    def gemms(self) -> dict[tuple[int, int, int, int, str], int]:
        """Distinct GEMMs `(m, k, n, batch, layout)` → calls of each over the counted update calls."""
        out: Counter[tuple[int, int, int, int, str]] = Counter()
        for s in self.shapes:
            out[s.gemm] += s.count
        return dict(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "calls": self.calls,
            "per_call": self.per_call,
            "flop_counter_total": self.flop_counter_total,
            "shapes": [s.to_json() for s in self.shapes],
        }


def _layout(*operands: torch.Tensor) -> str:
    """`N` for a row-major matrix operand, `T` for a transposed view (unit stride along its rows)."""
    out = ""
    for t in operands:
        if t.dim() < 2:
            out += "N"
            continue
        rows, cols = t.shape[-2], t.shape[-1]
        s_row, s_col = t.stride(-2), t.stride(-1)
        out += "T" if (rows > 1 and cols > 1 and s_row == 1 and s_col != 1) else "N"
    return out


def _conv_gemms(
    x_shape: Sequence[int], w_shape: Sequence[int], out_shape: Sequence[int], transposed: bool, groups: int
) -> tuple[int, int, int]:
    """(m, k, n) per group of a convolution's forward GEMM (im2col form): FLOPs equal `conv_flop_count`'s."""
    n_batch = x_shape[0]
    kernel = math.prod(w_shape[2:])
    if not transposed:  # weight [C_out, C_in/g, *K]
        c_out, c_in_g = w_shape[0], w_shape[1]
        return n_batch * math.prod(out_shape[2:]), c_in_g * kernel, c_out // groups
    c_in, c_out_g = w_shape[0], w_shape[1]  # weight [C_in, C_out/g, *K]: the forward is a grad-input GEMM
    return n_batch * math.prod(x_shape[2:]), c_in // groups, c_out_g * kernel


class MatmulRecorder(TorchDispatchMode):  # type: ignore[no-untyped-call]  # torch's mode base is untyped
    """Counts every matmul-family op dispatched while active (forward, backward and forward-mode AD alike)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.counts: Counter[tuple[str, int, int, int, int, str]] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # A matmul variant this cannot parse raises here: a silently short count would make a wrong roofline.
        self._record(getattr(func, "overloadpacket", None), args, out)
        return out

    def _record(self, packet: Any, args: Sequence[Any], out: Any) -> None:
        if packet in _MM:
            name = _MM[packet]
            a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
            batch = int(a.shape[0]) if a.dim() == 3 else 1
            m, k, n = int(a.shape[-2]), int(a.shape[-1]), int(b.shape[-1])
            self.counts[(name, m, k, n, batch, _layout(a, b))] += 1
        elif packet in _MV:
            name = _MV[packet]
            a = args[1] if name == "addmv" else args[0]
            self.counts[(name, int(a.shape[0]), int(a.shape[1]), 1, 1, _layout(a) + "N")] += 1
        elif packet in _CONV:
            x, w = args[0], args[1]
            transposed, groups = bool(args[6]), int(args[8])
            m, k, n = _conv_gemms(x.shape, w.shape, out.shape, transposed, groups)
            self.counts[("conv", m, k, n, groups, "NN")] += 1
        elif packet is _aten.convolution_backward:
            grad_out, x, w = args[0], args[1], args[2]
            transposed, groups, mask = bool(args[7]), int(args[9]), args[10]
            m, k, n = _conv_gemms(x.shape, w.shape, grad_out.shape, transposed, groups)
            if mask[0]:  # grad-input: grad_out columns back through the weight (col2im)
                self.counts[("conv_grad_input", m, n, k, groups, "NT")] += 1
            if mask[1]:  # grad-weight: grad_out^T @ im2col(input)
                self.counts[("conv_grad_weight", n, m, k, groups, "TN")] += 1

    def shapes(self) -> tuple[MatmulShape, ...]:
        """The recorded shapes, most FLOPs first."""
        rows = [MatmulShape(op, m, k, n, b, c, lay) for (op, m, k, n, b, lay), c in self.counts.items()]
        return tuple(sorted(rows, key=lambda s: (-s.flops, s.op, s.m, s.k, s.n)))


def update_flops(algo: Any, batches: Iterator[Batch[torch.Tensor]], calls: int = 1, warmup: int = 0) -> UpdateFlops:
    """Matmul FLOPs of `calls` real `algo.update(batches)` calls (after `warmup` uncounted ones).

    The learner really trains during the count (its weights, optimizer state and counters move), so pass a
    learner made for counting. `calls` should cover a whole actor-delay cycle (`policy_delay`) for a per-call
    mean that a long run would see.
    """
    if calls < 1 or warmup < 0:
        raise ValueError(f"update_flops: calls must be >= 1 and warmup >= 0, got {calls}, {warmup}")
    for _ in range(warmup):
        algo.update(batches)
    recorder = MatmulRecorder()
    counter = FlopCounterMode(display=False)
    with counter, recorder:
        for _ in range(calls):
            algo.update(batches)
    shapes = recorder.shapes()
    return UpdateFlops(
        total=sum(s.flops for s in shapes),
        calls=calls,
        shapes=shapes,
        flop_counter_total=int(counter.get_total_flops()),
    )
