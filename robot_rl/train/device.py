"""Where a learner trains: `--device auto|cpu|cuda[:N]`, and the proxy that keeps a learner on an accelerator.

The CPU is the default path and is untouched: `place_algorithm(algo, cpu)` returns the learner itself, so CPU runs
are bit-identical to runs made before devices existed. On an accelerator the learner is built inside a
`torch.device` context (every parameter, buffer and temperature is born there) and wrapped in `OnDevice`, which

- enters the same context around `update`, `act` and `observe`, so tensors an algorithm creates while it runs
  (`torch.randn` noise, diffusion time steps) land on the device without the algorithm naming it;
- moves each `Batch` to the device as the update pulls it: replay buffers and datasets stay numpy arrays in host
  memory (sampling is host work), only the rows one update needs cross over;
- hands out CPU tensors: `state_tensors()` (checkpoints load on any machine) and `policy()`, a CPU copy of the
  current weights for evaluation, export and actors (the robot side is CPU/ONNX).

The context is a torch function mode: it costs Python time on every torch call, which is why the CPU path never
enters it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.core.types import Batch, TrainingStats
from robot_rl.nets.deployable import DeployablePolicy

__all__ = [
    "DEVICE_CHOICES",
    "OnDevice",
    "batch_to",
    "device_rng_state",
    "place_algorithm",
    "resolve_device",
    "restore_device_rng",
]

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str) -> torch.device:
    """The torch device `--device name` means: `auto` = the first CUDA device when torch sees one, else the CPU.

    Raises:
        ValueError: an unknown name, or `cuda` on a machine (or a torch build) without a CUDA device.
    """
    text = name.strip().lower()
    if text == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        try:
            dev = torch.device(text)
        except RuntimeError as exc:
            raise ValueError(f"--device {name!r}: {exc}; choose {DEVICE_CHOICES}") from exc
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ValueError(
                f"--device {name!r}: torch {torch.__version__} ({build}) sees no CUDA device on this machine; "
                "use --device cpu, or --device auto to take a GPU only where there is one"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"--device {name!r}: this machine has {count} CUDA device(s), numbered 0..{count - 1}")
        return dev
    raise ValueError(f"--device {name!r} is not a device; choose {DEVICE_CHOICES}")


def batch_to(batch: Batch[torch.Tensor], device: torch.device) -> Batch[torch.Tensor]:
    """`batch` with every present field on `device` (copies from pinned host memory do not block)."""
    moved: Batch[torch.Tensor] = Batch._make(None if t is None else t.to(device, non_blocking=True) for t in batch)
    return moved


class OnDevice:
    """A learner that lives on an accelerator, seen by the training loops as any `Algorithm` (see the module doc).

    Attributes the loops read (`name`, `chunk_size`, `gamma`, ...) pass through to the learner.
    """

    def __init__(self, algo: Any, device: torch.device) -> None:
        self.algo = algo
        self.device = device

    def __getattr__(self, name: str) -> Any:  # only called for what OnDevice itself lacks
        value = getattr(self.algo, name)
        if callable(value) and not isinstance(value, (type, torch.nn.Module)):
            # an optional method a loop looks up (`observe_actions`, ...) runs on the device like the others
            return functools.partial(self._in_context, value)
        return value

    def _in_context(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.device:
            return fn(*args, **kwargs)

    def update(self, batches: Iterator[Batch[torch.Tensor]]) -> TrainingStats:
        with self.device:
            stats: TrainingStats = self.algo.update(batch_to(b, self.device) for b in batches)
        return stats

    def act(self, obs: npt.NDArray[np.float32], deterministic: bool) -> npt.NDArray[np.float32]:
        with self.device:
            out: npt.NDArray[np.float32] = self.algo.act(obs, deterministic)
        return out

    def observe(self, obs: npt.NDArray[np.float32]) -> None:
        with self.device:
            self.algo.observe(obs)

    def policy(self) -> DeployablePolicy:
        """A CPU copy of the deployable policy with the current weights (evaluation, export, actors)."""
        cpu: DeployablePolicy = copy.deepcopy(self.algo.policy()).cpu()
        return cpu

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.algo.state_tensors().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        with self.device:
            self.algo.load_state_tensors({k: v.to(self.device) for k, v in tensors.items()}, meta)

    def state_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.algo.state_meta()
        return meta


def device_rng_state(algo: Any) -> dict[str, torch.Tensor]:
    """The accelerator's random state a checkpoint must carry besides the CPU one (empty on the CPU)."""
    if isinstance(algo, OnDevice) and algo.device.type == "cuda":
        return {"rng/cuda": torch.cuda.get_rng_state(algo.device)}
    return {}


def restore_device_rng(algo: Any, data: dict[str, torch.Tensor]) -> None:
    """Inverse of `device_rng_state` (a checkpoint written on the CPU leaves the accelerator's stream as seeded)."""
    if isinstance(algo, OnDevice) and algo.device.type == "cuda" and "rng/cuda" in data:
        torch.cuda.set_rng_state(data["rng/cuda"].cpu(), algo.device)


def place_algorithm(build: Any, device: torch.device) -> Any:
    """`build()` (a learner constructor taking no arguments) run on `device`: the learner itself on the CPU, an
    `OnDevice` proxy around a learner built inside the device context elsewhere."""
    if device.type == "cpu":
        return build()
    with device:
        algo = build()
    return OnDevice(algo, device)
