"""Checkpoints: safetensors for tensors, JSON for everything else, written atomically.

Layout: `<run>/checkpoints/step_<N>/{model.safetensors, data.safetensors, state.json}` and
`<run>/checkpoints/latest` naming the newest valid one. `state.json` is written last and carries
the sha256 of both tensor files: a checkpoint without it, or whose hashes or tensors are bad,
is never loaded. Non-finite weights are refused at save time.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from robot_rl.core.fileio import atomic_write_text, fsync_dir, sha256_file

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "atomic_write_text",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or is not valid to load."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    model: dict[str, torch.Tensor]
    """Algorithm tensors (weights, optimizer state)."""
    data: dict[str, torch.Tensor]
    """Replay buffer arrays and other run-state tensors."""
    state: dict[str, Any]
    """JSON state: step counters, RNG states, configs, algorithm meta."""


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def non_finite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of floating tensors holding NaN or Inf."""
    return [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def save_checkpoint(
    ckpt_dir: Path, step: int, model: dict[str, torch.Tensor], data: dict[str, torch.Tensor], state: dict[str, Any]
) -> Path:
    """Write a checkpoint for `step` and point `latest` at it. Returns its directory."""
    bad = non_finite_tensors(model)
    if bad:
        raise CheckpointError(f"refusing to save a checkpoint with non-finite tensors: {bad[:10]}")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:09d}"
    final = ckpt_dir / name
    tmp = ckpt_dir / f".tmp-{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file({k: v.contiguous() for k, v in model.items()}, str(tmp / "model.safetensors"))
    save_file({k: v.contiguous() for k, v in data.items()}, str(tmp / "data.safetensors"))
    for f in ("model.safetensors", "data.safetensors"):
        _fsync_file(tmp / f)
    full_state = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "sha256": {f: sha256_file(tmp / f) for f in ("model.safetensors", "data.safetensors")},
        **state,
    }
    atomic_write_text(tmp / "state.json", json.dumps(full_state, indent=1))
    old = ckpt_dir / f".old-{name}"
    if final.exists():  # re-saving a step (e.g. a finished run resumed without extension)
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)  # aside, not deleted, until the new one is in place
    os.replace(tmp, final)
    fsync_dir(ckpt_dir)
    if old.exists():
        shutil.rmtree(old)
    atomic_write_text(ckpt_dir / "latest", name + "\n")
    return final


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint `latest` points to, or None when there is none."""
    pointer = ckpt_dir / "latest"
    if not pointer.exists():
        return None
    path = ckpt_dir / pointer.read_text().strip()
    return path if path.is_dir() else None


def load_checkpoint(path: Path) -> Checkpoint:
    """Load and verify a checkpoint directory (hashes, format, finite weights)."""
    state_file = path / "state.json"
    if not state_file.exists():
        raise CheckpointError(f"{path} is not a complete checkpoint (no state.json)")
    try:
        state = json.loads(state_file.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{state_file} is not valid JSON: {exc}") from None
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format {state.get('format_version')!r}")
    for f, expected in state["sha256"].items():
        actual = sha256_file(path / f)
        if actual != expected:
            raise CheckpointError(f"{path / f}: sha256 mismatch (state.json says {expected}, file is {actual})")
    model = load_file(str(path / "model.safetensors"))
    data = load_file(str(path / "data.safetensors"))
    bad = non_finite_tensors(model)
    if bad:
        raise CheckpointError(f"{path}: non-finite tensors {bad[:10]}")
    return Checkpoint(path=path, model=model, data=data, state=state)
