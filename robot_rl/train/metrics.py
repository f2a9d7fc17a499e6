"""Metric sinks: JSONL (always), CSV of evaluations, TensorBoard (optional)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Writes `{"step", "wall_s", <name>: value}` records to `metrics.jsonl` and TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool) -> None:
        self.run_dir = run_dir
        self._jsonl = open(run_dir / "metrics.jsonl", "a", buffering=1)
        self._tb: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tb"))
        eval_csv = run_dir / "eval.csv"
        new = not eval_csv.exists()
        self._eval_file = open(eval_csv, "a", newline="", buffering=1)
        self._eval = csv.writer(self._eval_file)
        if new:
            self._eval.writerow(["step", "wall_s", "mean_return", "std_return", "success_rate", "episodes"])

    def log(self, step: int, wall_s: float, values: dict[str, float]) -> None:
        clean = {k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}
        self._jsonl.write(json.dumps({"step": step, "wall_s": round(wall_s, 3), **clean}) + "\n")
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)

    def log_eval(self, step: int, wall_s: float, mean: float, std: float, success: float, episodes: int) -> None:
        self._eval.writerow([step, f"{wall_s:.3f}", f"{mean:.4f}", f"{std:.4f}", f"{success:.3f}", episodes])
        self.log(step, wall_s, {"eval/mean_return": mean, "eval/std_return": std, "eval/success_rate": success})

    def close(self) -> None:
        self._jsonl.close()
        self._eval_file.close()
        if self._tb is not None:
            self._tb.close()


def read_eval_csv(path: Path) -> list[dict[str, float]]:
    """Rows of an `eval.csv` as floats."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
