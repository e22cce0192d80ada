"""Export one HRM module to an ONNX file with the named dynamic axes of `hrm_export.core.specs`.

Exporter: `torch.onnx.export(dynamo=True)` (torch.export + onnxscript). It keeps every dynamic axis under the
spec's own names, folds constants and emits the opset-23 fused `Attention` / `RMSNormalization` ops, which ONNX
Runtime's CPU provider runs faster than the decomposed graph (docs/parity.md, "Exporter and opset").
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from hrm_export.core.errors import require
from hrm_export.core.specs import STATIC_STEP, ModuleSpec
from model_src.atomic import atomic_output
from model_src.config import HRMConfig

TWO_GB = 2**31
# Sizes used to trace; distinct values > 1 so torch.export neither specialises a dim nor merges two of them.
TRACE_SIZES = {"batch": 2, "days": 5, "minutes": 7, "new_minutes": 3, "past_minutes": 4}


def example_args(spec: ModuleSpec) -> tuple[torch.Tensor, ...]:
    """Random inputs of the spec's layout at TRACE_SIZES (only their shapes matter for tracing)."""
    gen = torch.Generator().manual_seed(0)
    return tuple(torch.full(t.axes, TRACE_SIZES["past_minutes"], dtype=torch.int64) if t.dtype == "int64" else
                 torch.randn(*(TRACE_SIZES.get(a, a) for a in t.axes), generator=gen) for t in spec.inputs)


def nest(spec: ModuleSpec, flat: tuple) -> tuple:
    """The module's positional arguments from the spec's flat inputs: l_step_static takes its cache slices as
    one list argument (the exporter flattens it back into the spec's input order)."""
    if spec.name != STATIC_STEP:
        return flat
    names = spec.input_names
    first, last = names.index("position") + 1, max(i for i, n in enumerate(names) if n.startswith("cache_"))
    return (*flat[:first], list(flat[first:last + 1]), *flat[last + 1:])


def export_module(module: nn.Module, spec: ModuleSpec, cfg: HRMConfig, path: Path, opset: int) -> dict:
    """Export `module` to `path` (atomically) and check it; returns facts for the manifest."""
    onnx = require("onnx", "pip install 'hrm-export[ort]'")
    require("onnxscript", "pip install 'hrm-export[ort]'")
    # "torchvision is not installed" from the exporter's op registry: irrelevant to this model.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    dynamic_shapes = nest(spec, tuple(t.dynamic_axes or None for t in spec.inputs))  # {dim: "axis name"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's own deprecation chatter, not the user's concern
        program = torch.onnx.export(
            module.eval(), nest(spec, example_args(spec)), None, input_names=spec.input_names,
            output_names=spec.output_names,
            dynamic_shapes=dynamic_shapes, opset_version=opset, dynamo=True, optimize=True, verbose=False,
        )
    proto = program.model_proto
    _name_output_axes(proto, spec)
    for key, value in (("hrm_export.module", spec.name), ("hrm_export.config", cfg.to_json())):
        proto.metadata_props.add(key=key, value=value)
    proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    large = proto.ByteSize() >= TWO_GB
    if not large:
        onnx.checker.check_model(proto, full_check=True)
    with atomic_output(path) as tmp:
        if large:  # protobuf caps a file at 2 GB: weights go to one external file beside it
            onnx.save_model(proto, str(tmp), save_as_external_data=True, location=f"{path.name}.data")
            onnx.checker.check_model(str(tmp), full_check=True)
        else:
            onnx.save_model(proto, str(tmp))
    opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    return {"opset": opsets.get("ai.onnx", opset), "external_data": large, "nodes": len(proto.graph.node)}


def _name_output_axes(proto, spec: ModuleSpec) -> None:
    """Give every dynamic output dim its spec name (the exporter writes e.g. 'new_minutes + past_minutes')."""
    outputs = {o.name: o for o in proto.graph.output}
    for t in spec.outputs:
        dims = outputs[t.name].type.tensor_type.shape.dim
        assert len(dims) == len(t.axes), f"{spec.name}.{t.name}: exported rank {len(dims)} != spec {t.axes}"
        for d, axis in zip(dims, t.axes, strict=True):
            if isinstance(axis, str):
                d.dim_param = axis
            else:
                assert d.dim_value == axis, f"{spec.name}.{t.name}: exported dim {d} != spec {axis}"
