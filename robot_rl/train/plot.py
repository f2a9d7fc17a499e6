"""Learning-curve plots (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robot_rl.train.metrics import read_eval_csv


def plot_learning_curves(curves: Sequence[tuple[str, Path]], out_png: Path, title: str = "", x: str = "step") -> Path:
    """Plot mean evaluation return (± std band) of each `(label, eval.csv)` against `x` ("step" or "wall_s")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for label, csv_path in curves:
        rows = read_eval_csv(csv_path)
        if not rows:
            continue
        xs = [r[x] for r in rows]
        mean = [r["mean_return"] for r in rows]
        std = [r["std_return"] for r in rows]
        ax.plot(xs, mean, marker="o", ms=3, label=label)
        ax.fill_between(xs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.2)
    ax.set_xlabel("environment steps" if x == "step" else "training wall-clock [s]")
    ax.set_ylabel("evaluation return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
