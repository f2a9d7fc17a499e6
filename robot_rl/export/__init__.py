"""Policy bundles: manifest, verification and the torch-free OnnxPolicy runtime.

The exporter (which needs torch) is imported explicitly: `from robot_rl.export.onnx_export import
export_policy`. Importing this package never imports torch, so the robot side stays small.
"""

from robot_rl.export.errors import BundleError, ExportError
from robot_rl.export.manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    MODEL_CARD_FILE,
    ONNX_FILE,
    Manifest,
    atomic_write_bytes,
    atomic_write_text,
    read_manifest,
    sha256_file,
    write_manifest,
)
from robot_rl.export.runtime import OnnxPolicy

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "MODEL_CARD_FILE",
    "ONNX_FILE",
    "BundleError",
    "ExportError",
    "Manifest",
    "OnnxPolicy",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_manifest",
    "sha256_file",
    "write_manifest",
]
