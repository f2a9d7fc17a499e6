"""Control-barrier-function QP filter: barrier rows from the URDF's control points, a velocity/acceleration box,
and `min ½‖u − u_policy‖²` over both (the `cbf` link, robot_rl/safety/links/cbf.py). Numpy only at import; the QP
solver is imported by name when a filter is built."""

from robot_rl.safety.cbf.config import CbfConfig
from robot_rl.safety.cbf.filter import ROW_TOL, CbfFilter, CbfStats
from robot_rl.safety.cbf.qp import QpBackend, QpResult, make_backend

__all__ = ["ROW_TOL", "CbfConfig", "CbfFilter", "CbfStats", "QpBackend", "QpResult", "make_backend"]
