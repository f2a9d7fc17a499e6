"""One way to trace a torch module to an ONNX model: the legacy TorchScript exporter, dynamic batch, loaded back
without external data. The policy graph and the Lyapunov critic graph are both traced here."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import onnx
import torch
from torch import nn

from robot_rl.export.errors import ExportError
from robot_rl.export.manifest import BATCH_DIM


def trace_to_proto(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_name: str,
    raw_path: Path,
    opset: int,
    what: str,
) -> onnx.ModelProto:
    """Trace `model` on `example` to `raw_path` and load it back (every axis 0 the dynamic batch `BATCH_DIM`).

    Raises:
        ExportError: the exporter failed (it raises many types for unsupported ops), naming `what`.
    """
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The legacy TorchScript exporter is a deliberate choice (no onnxscript dependency); its deprecation and
            # the tracer's warnings on shape checks are expected.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                example,
                str(raw_path),
                dynamo=False,
                export_params=True,
                do_constant_folding=True,
                input_names=list(input_names),
                output_names=[output_name],
                dynamic_axes={name: {0: BATCH_DIM} for name in (*input_names, output_name)},
                opset_version=opset,
            )
    except Exception as exc:  # the exporter raises many types for unsupported ops
        raise ExportError(f"torch.onnx.export{what} failed: {exc}") from exc
    return onnx.load(str(raw_path), load_external_data=False)
