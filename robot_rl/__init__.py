"""robot_rl: train robot policies in simulation, export verified ONNX bundles, deploy them."""

import os as _os

# libgomp's default spin-wait (300k spins) collapses when another process holds a core: measured
# here, 2 torch threads fell from ~120 to 5-10 updates/s on a loaded 2-core machine. A passive wait
# policy avoids that but loses the whole 2-thread gain on an idle machine (74 vs 126 updates/s).
# A short spin keeps both (123 idle, 43 loaded). Must be set before torch loads libgomp; a user's
# value wins. Numbers: docs/benchmarks/sac_vs_sb3.md.
_os.environ.setdefault("GOMP_SPINCOUNT", "2000")

__version__ = "0.1.0"
