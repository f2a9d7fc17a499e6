"""The filter's QP, `min ½‖u − u_ref‖²  s.t.  A·u ≤ b,  lb ≤ u ≤ ub`, behind one small interface per solver.

Backends: DAQP (dual active set, direct API), OSQP (ADMM; set up once per shape, then updated and warm-started),
ProxSuite ProxQP (dense, warm-started from the previous result) and any solver of the `qpsolvers` package. Each
solver is imported by name when its backend is built, so the safety package imports only numpy.

`QpBackend.solve` never raises: a solve that is infeasible, returns non-finite values, runs over the time budget
or raises gives `QpResult(None, status, solve_s)`. A status starts with its category: "solved", "infeasible",
"timeout" or "error". Rows with b = +inf are inactive (the filter marks rows the bounds already imply that
way); the fixed-shape backends keep them so their warm start sees the same rows every step.
"""

from __future__ import annotations

import importlib
import time
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from robot_rl.safety.cbf.config import QPSOLVERS_PREFIX

F64 = npt.NDArray[np.float64]

SOLVER_TOL = 1e-9
"""Primal feasibility / optimality tolerance asked of every solver (the filter accepts 1e-6 violations, so a
converged solve always passes its check)."""
PROXSUITE_MAX_ITER = 200
"""Outer and inner iteration cap of ProxQP (a feasible problem of this size converges in a few dozen)."""
_INF = 1e30
"""What the C solvers read as "no bound" (OSQP_INFTY; DAQP and ProxSuite treat it the same way)."""


class QpResult(NamedTuple):
    """One solve."""

    u: F64 | None
    """The minimizer [n] (rad/s), or None when the solve failed."""
    status: str
    """Starts with "solved", "infeasible", "timeout" or "error", then the solver's own words."""
    solve_s: float
    """Wall time of the solver call, s (perf_counter)."""


class QpBackend:
    """A solver behind `solve`; subclasses write `_solve` (which may raise: `solve` catches everything)."""

    name: str = ""
    """The solver's name as the config gives it."""

    def __init__(self, n: int, time_budget_s: float) -> None:
        """Args:
        n: number of decision variables (joints).
        time_budget_s: a solve that takes longer is discarded (status "timeout").
        """
        self.n = n
        """Number of joints."""
        self.time_budget_s = time_budget_s
        """Hard limit on one solve, s."""
        self._eye = np.eye(n)

    def solve(self, u_ref: F64, a: F64, b: F64, lb: F64, ub: F64) -> QpResult:
        """Project `u_ref` [n] onto {A·u ≤ b, lb ≤ u ≤ ub} (A [m, n], b [m] with +inf for inactive rows). Never
        raises."""
        start = time.perf_counter()
        try:
            u, status = self._solve(u_ref, a, b, lb, ub)
        except Exception as exc:  # a solver fault must become a hold, never an exception on the robot path
            return QpResult(None, f"error: {self.name} raised {type(exc).__name__}: {exc}", _since(start))
        solve_s = _since(start)
        if solve_s > self.time_budget_s:  # also when the solver gave up at its own time limit
            return QpResult(
                None, f"timeout: {self.name} took {solve_s * 1e6:.0f} µs > {self.time_budget_s * 1e6:.0f} µs", solve_s
            )
        if u is None:
            return QpResult(None, status, solve_s)
        if u.shape != (self.n,) or not np.isfinite(u).all():
            return QpResult(None, f"error: {self.name} returned {u!r}, not {self.n} finite numbers", solve_s)
        return QpResult(u, status, solve_s)

    def _solve(self, u_ref: F64, a: F64, b: F64, lb: F64, ub: F64) -> tuple[F64 | None, str]:
        raise NotImplementedError


class DaqpBackend(QpBackend):
    """DAQP's `solve` (dual active set, exact up to rounding): only the active rows are passed, bounds first.

    No warm start: a cold solve of this size takes a few µs, and a stateless solve makes `preview` and offline
    re-filtering reproduce the executed action bit for bit.
    """

    name = "daqp"

    def __init__(self, n: int, time_budget_s: float) -> None:
        super().__init__(n, time_budget_s)
        self._daqp: Any = importlib.import_module("daqp")

    def _solve(self, u_ref: F64, a: F64, b: F64, lb: F64, ub: F64) -> tuple[F64 | None, str]:
        keep = b < _INF
        a_in = a[keep]
        m = a_in.shape[0]
        upper = np.concatenate((ub, b[keep]))
        lower = np.concatenate((lb, np.full(m, -_INF)))
        x, _, flag, _ = self._daqp.solve(
            self._eye,
            -u_ref,
            a_in,
            upper,
            lower,
            np.zeros(self.n + m, dtype=np.int32),
            primal_tol=SOLVER_TOL,
            time_limit=self.time_budget_s,
        )
        if flag == 1:
            return np.asarray(x, dtype=np.float64), "solved"
        what = {-1: "infeasible", -2: "error: cycling", -4: "error: iteration limit"}.get(int(flag), "error")
        return None, f"{what} (daqp exit flag {flag})"


class OsqpBackend(QpBackend):
    """OSQP, set up once per row count and then updated (values only: the sparsity pattern is dense and fixed),
    warm-started from its previous solution, with solution polishing for an active-set-accurate answer."""

    name = "osqp"

    def __init__(self, n: int, time_budget_s: float) -> None:
        super().__init__(n, time_budget_s)
        self._osqp: Any = importlib.import_module("osqp")
        self._sparse: Any = importlib.import_module("scipy.sparse")
        self._prob: Any = None
        self._m = -1
        self._solved = int(self._osqp.SolverStatus.OSQP_SOLVED)

    def _setup(self, u_ref: F64, a_full: F64, lower: F64, upper: F64) -> None:
        rows, n = a_full.shape
        # A dense pattern built by hand: scipy would drop explicit zeros, and `update(Ax=...)` needs the pattern
        # of the setup call every step.
        a_csc = self._sparse.csc_matrix(
            (a_full.ravel(order="F"), np.tile(np.arange(rows), n), np.arange(0, rows * n + 1, rows)), shape=(rows, n)
        )
        p = self._sparse.csc_matrix(self._eye)
        self._prob = self._osqp.OSQP()
        self._prob.setup(
            p,
            -u_ref,
            a_csc,
            lower,
            upper,
            verbose=False,
            eps_abs=SOLVER_TOL,
            eps_rel=0.0,
            polishing=True,
            warm_starting=True,
            time_limit=self.time_budget_s,
            max_iter=4000,
        )
        self._m = rows

    def _solve(self, u_ref: F64, a: F64, b: F64, lb: F64, ub: F64) -> tuple[F64 | None, str]:
        a_full = np.concatenate((a, self._eye))
        upper = np.minimum(np.concatenate((b, ub)), _INF)
        lower = np.concatenate((np.full(a.shape[0], -_INF), lb))
        warm = self._m == a_full.shape[0]
        if warm:
            self._prob.update(q=-u_ref, l=lower, u=upper, Ax=a_full.ravel(order="F"))
        else:
            self._setup(u_ref, a_full, lower, upper)
        res = self._prob.solve(raise_error=False)
        if int(res.info.status_val) != self._solved and warm:
            self._setup(u_ref, a_full, lower, upper)  # a failure counts only when a cold start agrees
            res = self._prob.solve(raise_error=False)
        status = int(res.info.status_val)
        if status == self._solved:
            return np.array(res.x, dtype=np.float64), "solved"
        self._m = -1  # a failed solve leaves an iterate that is no start for the next: set up afresh
        text = str(res.info.status)
        what = "infeasible" if "infeasible" in text and "dual" not in text else "error"
        if "time limit" in text:
            what = "timeout"
        return None, f"{what} (osqp: {text})"


class ProxsuiteBackend(QpBackend):
    """ProxSuite's dense ProxQP with box constraints, built once per row count, warm-started from the previous
    result."""

    name = "proxsuite"

    def __init__(self, n: int, time_budget_s: float) -> None:
        super().__init__(n, time_budget_s)
        self._proxqp: Any = importlib.import_module("proxsuite").proxqp
        self._qp: Any = None
        self._m = -1

    def _solve(self, u_ref: F64, a: F64, b: F64, lb: F64, ub: F64) -> tuple[F64 | None, str]:
        m = a.shape[0]
        upper = np.minimum(b, _INF)
        lower = np.full(m, -_INF)
        warm = self._m == m
        if warm:
            self._qp.update(g=-u_ref, C=a, l=lower, u=upper, l_box=lb, u_box=ub)
        else:
            self._init(u_ref, a, lower, upper, lb, ub)
        self._qp.solve()
        solved = self._proxqp.QPSolverOutput.PROXQP_SOLVED
        if self._qp.results.info.status != solved and warm:
            # A warm start from a rather different problem can end in a false infeasibility verdict (seen on
            # random problems): a failure counts only when a cold start agrees.
            self._init(u_ref, a, lower, upper, lb, ub)
            self._qp.solve()
        status = self._qp.results.info.status
        if status == solved:
            return np.array(self._qp.results.x, dtype=np.float64), "solved"
        self._m = -1  # a failed solve leaves an iterate that is no start for the next: set up afresh
        what = "infeasible" if status == self._proxqp.QPSolverOutput.PROXQP_PRIMAL_INFEASIBLE else "error"
        return None, f"{what} (proxsuite: {status.name})"

    def _init(self, u_ref: F64, a: F64, lower: F64, upper: F64, lb: F64, ub: F64) -> None:
        qp = self._proxqp.dense.QP(self.n, 0, a.shape[0], True)
        qp.settings.eps_abs = SOLVER_TOL
        qp.settings.eps_rel = 0.0
        qp.settings.verbose = False
        # ProxQP has no time limit, and its default iteration caps let it run for minutes on an infeasible QP
        # (bench/cbf_solvers.py saw 236 s): cap the iterations; the wall-clock budget is checked after the solve.
        qp.settings.max_iter = PROXSUITE_MAX_ITER
        qp.settings.max_iter_in = PROXSUITE_MAX_ITER
        qp.settings.initial_guess = self._proxqp.InitialGuess.WARM_START_WITH_PREVIOUS_RESULT
        qp.init(self._eye, -u_ref, None, None, a, lower, upper, lb, ub)
        self._qp, self._m = qp, a.shape[0]


_QPSOLVERS_SETTINGS: dict[str, dict[str, Any]] = {
    # The solvers' own tolerances are looser than the filter's check: ask each for the same accuracy.
    "osqp": {"eps_abs": SOLVER_TOL, "eps_rel": 0.0, "polishing": True},
    "proxqp": {
        "eps_abs": SOLVER_TOL,
        "eps_rel": 0.0,
        "max_iter": PROXSUITE_MAX_ITER,
    },
    "daqp": {"primal_tol": SOLVER_TOL},
}


class QpsolversBackend(QpBackend):
    """Any solver of the `qpsolvers` package (generic; each call converts the problem), warm-started with the
    previous solution as initial values."""

    def __init__(self, n: int, time_budget_s: float, solver: str) -> None:
        super().__init__(n, time_budget_s)
        self._qpsolvers: Any = importlib.import_module("qpsolvers")
        if solver not in self._qpsolvers.available_solvers:
            raise ValueError(
                f"cbf.solver 'qpsolvers:{solver}': qpsolvers has no installed solver {solver!r} "
                f"(installed: {sorted(self._qpsolvers.available_solvers)})"
            )
        self.name = QPSOLVERS_PREFIX + solver
        self._solver = solver
        self._settings = _QPSOLVERS_SETTINGS.get(solver, {})
        self._prev: F64 | None = None

    def _solve(self, u_ref: F64, a: F64, b: F64, lb: F64, ub: F64) -> tuple[F64 | None, str]:
        keep = b < _INF
        problem = self._qpsolvers.Problem(self._eye, -u_ref, a[keep], b[keep], lb=lb, ub=ub)
        sol = self._qpsolvers.solve_problem(problem, solver=self._solver, initvals=self._prev, **self._settings)
        if (not sol.found or sol.x is None) and self._prev is not None:
            # As for the direct backends: a failure counts only when a cold start agrees.
            sol = self._qpsolvers.solve_problem(problem, solver=self._solver, **self._settings)
        if not sol.found or sol.x is None:
            self._prev = None
            return None, f"infeasible ({self.name} found no solution)"
        self._prev = np.array(sol.x, dtype=np.float64)
        return self._prev.copy(), "solved"


def make_backend(solver: str, n: int, time_budget_s: float) -> QpBackend:
    """The backend the config's `cbf.solver` names.

    Raises:
        ValueError: an unknown name, or a solver package that is not installed (the message says which to install).
    """
    package = {"daqp": "daqp", "osqp": "osqp", "proxsuite": "proxsuite"}.get(solver, "qpsolvers")
    try:
        if solver == "daqp":
            return DaqpBackend(n, time_budget_s)
        if solver == "osqp":
            return OsqpBackend(n, time_budget_s)
        if solver == "proxsuite":
            return ProxsuiteBackend(n, time_budget_s)
        if solver.startswith(QPSOLVERS_PREFIX):
            return QpsolversBackend(n, time_budget_s, solver[len(QPSOLVERS_PREFIX) :])
    except ImportError as exc:
        raise ValueError(
            f"cbf.solver {solver!r} needs the {package!r} package, which does not import ({exc}): pip install {package}"
        ) from None
    raise ValueError(f"cbf.solver {solver!r} is not a known solver (daqp, osqp, proxsuite, qpsolvers:<name>)")


def _since(start: float) -> float:
    return max(time.perf_counter() - start, 0.0)
