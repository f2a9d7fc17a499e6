"""The stdlib protobuf scan finds external-data tensors and sampling ops, and rejects garbage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from robot_rl.export.onnx_scan import scan_onnx


def _matmul_model(random_in_subgraph: bool = False) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), name="weight")
    nodes = [helper.make_node("MatMul", ["x", "weight"], ["y"])]
    if random_in_subgraph:
        then_graph = helper.make_graph(
            [helper.make_node("RandomUniform", [], ["r"], shape=[1, 3])],
            "then",
            [],
            [helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 3])],
        )
        else_graph = helper.make_graph(
            [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.zeros((1, 3), np.float32)))],
            "else",
            [],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 3])],
        )
        cond = numpy_helper.from_array(np.array(True), name="cond")
        nodes.append(helper.make_node("If", ["cond"], ["z"], then_branch=then_graph, else_branch=else_graph))
        initializers = [weight, cond]
        outputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3])]
    else:
        initializers = [weight]
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        outputs,
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_plain_model() -> None:
    scan = scan_onnx(_matmul_model().SerializeToString())
    assert scan.external_tensors == ()
    assert scan.op_types == {"MatMul"}
    assert scan.sampling_ops == frozenset()


def test_external_data_detected(tmp_path: Path) -> None:
    path = tmp_path / "ext.onnx"
    onnx.save(_matmul_model(), path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    scan = scan_onnx(path.read_bytes())
    assert scan.external_tensors == (("weight", "weights.bin"),)


def test_sampling_op_in_subgraph_detected() -> None:
    scan = scan_onnx(_matmul_model(random_in_subgraph=True).SerializeToString())
    assert {"If", "RandomUniform", "Constant"} <= scan.op_types
    assert scan.sampling_ops == {"RandomUniform"}


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x3a\x7f", b"\x0b"])
def test_malformed_bytes_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="malformed ONNX protobuf"):
        scan_onnx(data)


def test_truncated_model_refused() -> None:
    data = _matmul_model().SerializeToString()
    with pytest.raises(ValueError, match="malformed"):
        scan_onnx(data[: len(data) // 2])
