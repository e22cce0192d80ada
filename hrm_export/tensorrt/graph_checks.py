"""Checks TensorRT would make late (or not at all), made on the ONNX file before a build starts.

TensorRT takes explicit quantization only as signed INT8 (or FP8) Q/DQ with zero points of 0 — in 10.x and
11.x alike. A graph quantized asymmetrically (uint8, zero point 128) parses in ONNX Runtime but not in
TensorRT's strongly typed networks, so it is refused here, naming the node and the PyTorch module.
"""

from __future__ import annotations

from pathlib import Path

from hrm_export.core.errors import UserError
from hrm_export.core.node_names import onnx_node_origins

QDQ = ("QuantizeLinear", "DequantizeLinear")


def qdq_problems(onnx_path: str | Path) -> list[tuple[int, str]]:
    """(node index, problem) for every Q/DQ node whose zero point is not a signed-int8 zero."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    consts = {i.name: i for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = a.t
    problems = []
    for i, n in enumerate(graph.node):
        if n.op_type not in QDQ or len(n.input) < 3 or not n.input[2]:
            continue  # no zero point input: it defaults to 0
        zp = consts.get(n.input[2])
        if zp is None:
            problems.append((i, f"zero point {n.input[2]!r} is computed at run time, not a constant 0"))
            continue
        if zp.data_type not in (onnx.TensorProto.INT8, onnx.TensorProto.FLOAT8E4M3FN):
            problems.append((i, f"zero point type {onnx.TensorProto.DataType.Name(zp.data_type)} (TensorRT takes "
                                "INT8 or FP8 Q/DQ)"))
        elif numpy_helper.to_array(zp).astype("float32").any():
            problems.append((i, "non-zero zero point (TensorRT takes symmetric quantization only)"))
    return problems


def check_qdq_for_tensorrt(onnx_path: str | Path, module: str) -> None:
    problems = qdq_problems(onnx_path)
    if not problems:
        return
    origins = onnx_node_origins(onnx_path, module)
    i, why = problems[0]
    o = origins[i]
    raise UserError(
        f"{Path(onnx_path).name}: Q/DQ node {o.node!r} from {o.module_name}: {why}"
        + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
        hint="re-quantize symmetrically to int8: hrm-export precision ... (zero points 0)")
