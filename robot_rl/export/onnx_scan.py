"""A minimal, stdlib-only reader of ONNX protobuf bytes: external-data tensors and operator types.

The robot-side runtime may not import `onnx` or `torch`, yet it must refuse models that keep
weights in external files or that sample at inference time (the export contract in
docs/architecture.md). onnxruntime does not expose either fact, so this walks the protobuf wire format
along the few schema paths that can hold tensors or nodes (field numbers from onnx.proto).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# Operators whose output is random: a deployable graph must be distribution-free.
SAMPLING_OPS: frozenset[str] = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
)

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
# Subgraphs nest (If/Loop bodies); a hostile file could nest without end, so cap the depth.
_MAX_DEPTH = 64
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


@dataclass(frozen=True)
class OnnxScan:
    """What the scan found in a serialized ModelProto."""

    external_tensors: tuple[tuple[str, str], ...]
    """`(tensor name, external location)` for every tensor stored outside the file."""
    op_types: frozenset[str]
    """Every `op_type` used by any node (main graph, subgraphs, functions, training info)."""

    @property
    def sampling_ops(self) -> frozenset[str]:
        """The random-sampling operators the model uses (empty for a deterministic graph)."""
        return self.op_types & SAMPLING_OPS


class _Scanner:
    def __init__(self, data: bytes) -> None:
        self.buf = memoryview(data)
        self.external: list[tuple[str, str]] = []
        self.op_types: set[str] = set()

    def _varint(self, pos: int, end: int) -> tuple[int, int]:
        result = 0
        shift = 0
        while True:
            if pos >= end or shift > 63:
                raise ValueError("truncated or oversized varint")
            byte = self.buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result, pos
            shift += 7

    def _fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """Yield `(field number, wire type, value or payload start, payload end)` for one message."""
        pos = start
        while pos < end:
            key, pos = self._varint(pos, end)
            field_no, wire = key >> 3, key & 7
            if field_no == 0:
                raise ValueError("field number 0")
            if wire == _VARINT:
                value, pos = self._varint(pos, end)
                yield field_no, wire, value, pos
            elif wire == _I64:
                pos += 8
                yield field_no, wire, 0, pos
            elif wire == _I32:
                pos += 4
                yield field_no, wire, 0, pos
            elif wire == _LEN:
                length, pos = self._varint(pos, end)
                if pos + length > end:
                    raise ValueError("length-delimited field runs past its message")
                yield field_no, wire, pos, pos + length
                pos += length
            else:
                raise ValueError(f"unsupported wire type {wire}")
            if pos > end:
                raise ValueError("field runs past its message")

    def _messages(self, start: int, end: int, wanted: int) -> Iterator[tuple[int, int]]:
        for field_no, wire, a, b in self._fields(start, end):
            if field_no == wanted:
                if wire != _LEN:
                    raise ValueError(f"field {wanted} should be length-delimited")
                yield a, b

    def _text(self, a: int, b: int) -> str:
        return bytes(self.buf[a:b]).decode("utf-8", errors="replace")

    def model(self, start: int, end: int) -> None:
        for field_no, wire, a, b in self._fields(start, end):
            if wire != _LEN:
                continue
            if field_no == 7:  # ModelProto.graph
                self.graph(a, b, 1)
            elif field_no == 25:  # ModelProto.functions
                self.function(a, b, 1)
            elif field_no == 20:  # ModelProto.training_info
                for g_start, g_end in self._messages(a, b, 1):  # TrainingInfoProto.initialization
                    self.graph(g_start, g_end, 2)
                for g_start, g_end in self._messages(a, b, 2):  # TrainingInfoProto.algorithm
                    self.graph(g_start, g_end, 2)

    def graph(self, start: int, end: int, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ValueError("graphs nested too deeply")
        for field_no, wire, a, b in self._fields(start, end):
            if wire != _LEN:
                continue
            if field_no == 1:  # GraphProto.node
                self.node(a, b, depth)
            elif field_no == 5:  # GraphProto.initializer
                self.tensor(a, b)
            elif field_no == 15:  # GraphProto.sparse_initializer
                self.sparse_tensor(a, b)

    def function(self, start: int, end: int, depth: int) -> None:
        for field_no, wire, a, b in self._fields(start, end):
            if wire != _LEN:
                continue
            if field_no == 7:  # FunctionProto.node
                self.node(a, b, depth)
            elif field_no == 11:  # FunctionProto.attribute_proto
                self.attribute(a, b, depth)

    def node(self, start: int, end: int, depth: int) -> None:
        for field_no, wire, a, b in self._fields(start, end):
            if wire != _LEN:
                continue
            if field_no == 4:  # NodeProto.op_type
                self.op_types.add(self._text(a, b))
            elif field_no == 5:  # NodeProto.attribute
                self.attribute(a, b, depth)

    def attribute(self, start: int, end: int, depth: int) -> None:
        for field_no, wire, a, b in self._fields(start, end):
            if wire != _LEN:
                continue
            if field_no in (5, 10):  # AttributeProto.t, .tensors
                self.tensor(a, b)
            elif field_no in (6, 11):  # AttributeProto.g, .graphs
                self.graph(a, b, depth + 1)
            elif field_no in (22, 23):  # AttributeProto.sparse_tensor, .sparse_tensors
                self.sparse_tensor(a, b)

    def sparse_tensor(self, start: int, end: int) -> None:
        for field_no, wire, a, b in self._fields(start, end):
            if wire == _LEN and field_no in (1, 2):  # SparseTensorProto.values, .indices
                self.tensor(a, b)

    def tensor(self, start: int, end: int) -> None:
        name = ""
        location = ""
        external = False
        for field_no, wire, a, b in self._fields(start, end):
            if field_no == 8 and wire == _LEN:  # TensorProto.name
                name = self._text(a, b)
            elif field_no == 13 and wire == _LEN:  # TensorProto.external_data (key/value entries)
                external = True
                key = value = ""
                for entry_field, entry_wire, c, d in self._fields(a, b):
                    if entry_wire == _LEN and entry_field == 1:
                        key = self._text(c, d)
                    elif entry_wire == _LEN and entry_field == 2:
                        value = self._text(c, d)
                if key == "location":
                    location = value
            elif field_no == 14 and wire == _VARINT and a == _EXTERNAL:  # TensorProto.data_location
                external = True
        if external:
            self.external.append((name, location))


def scan_onnx(model_bytes: bytes) -> OnnxScan:
    """Scan a serialized ONNX ModelProto for external-data tensors and the operator types it uses.

    Raises:
        ValueError: the bytes are not a well-formed protobuf message.
    """
    scanner = _Scanner(model_bytes)
    try:
        scanner.model(0, len(model_bytes))
    except IndexError as exc:  # memoryview index past the end: truncated file
        raise ValueError(f"malformed ONNX protobuf: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"malformed ONNX protobuf: {exc}") from exc
    return OnnxScan(external_tensors=tuple(scanner.external), op_types=frozenset(scanner.op_types))
