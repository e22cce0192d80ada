"""bf16 graph → "bf16-emulated" fp32 graph that ONNX Runtime's CPU provider can run.

ORT CPU has no bf16 MatMul/Attention kernels. The emulated graph is the same graph with every bf16 tensor
replaced by an fp32 tensor holding the same (bf16-representable) values: bf16 weights are widened exactly, and
each bf16 result is rounded through Cast fp32→bf16→fp32 right after the node that makes it. What it does not
reproduce is how the GPU accumulates inside one kernel (TensorRT accumulates bf16 matmuls in fp32, as this
graph does), so it measures the storage/rounding error of bf16, which is the part the precision plan controls.
"""

from __future__ import annotations

from hrm_export.precision.bf16 import BFLOAT16, FLOAT
from hrm_export.precision.graph import cast_node, tensor_types, topo_sort


def emulate_bf16(model):
    """Return the fp32 emulation of a bf16-typed ModelProto (the input is not modified)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    types = tensor_types(model)
    for init in model.graph.initializer:
        if init.data_type == BFLOAT16:
            arr = numpy_helper.to_array(init).astype("float32")  # exact: every bf16 value is an fp32 value
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    rounding = []
    for node in model.graph.node:
        for a in node.attribute:
            if node.op_type == "Cast" and a.name == "to" and a.i == BFLOAT16:
                a.i = FLOAT  # the rounding is added below, like for every other bf16 result
        for k, o in enumerate(node.output):
            if types.get(o) == BFLOAT16:
                raw, rounded = f"{o}.unrounded", f"{o}.as_bf16"
                node.output[k] = raw
                rounding += [cast_node(raw, rounded, BFLOAT16, f"{o}/emulate_round"),
                             cast_node(rounded, o, FLOAT, f"{o}/emulate_widen")]
    model.graph.node.extend(rounding)
    topo_sort(model)
    del model.graph.value_info[:]
    return onnx.shape_inference.infer_shapes(model)


def count_bf16_tensors(model) -> int:
    """bf16-typed tensors of a graph (initializers and intermediates); 0 after emulation."""
    types = tensor_types(model)
    return sum(1 for t in types.values() if t == BFLOAT16)
