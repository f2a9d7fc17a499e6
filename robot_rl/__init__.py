"""robot_rl: train robot policies in simulation, export verified ONNX bundles, deploy them."""

import os as _os

# OpenMP threads that spin-wait collapse when another process holds a core (measured here: 2 torch
# threads went from 44 to 5 updates/s on a loaded 2-core machine). Passive waiting costs little on an
# idle machine and avoids that cliff. Must be set before torch loads libgomp; a user's value wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
