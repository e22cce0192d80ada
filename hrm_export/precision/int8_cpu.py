"""INT8 for CPUs ("int8-cpu"): ONNX Runtime dynamic quantization of the Linear layers.

The Q/DQ graph (`int8`) is shaped for TensorRT. ORT's CPU provider fuses it into integer kernels too, but the CPU
artifact is simpler and measured both faster and closer to fp32 (2-core CPU, batch 1, l_module 390: fp32 51.1 ms,
int8 24.0 ms, int8-cpu 22.3 ms; docs/precision.md). `quantize_dynamic` stores MatMul weights as INT8 (symmetric,
zero point 0) and quantizes each activation at run time (DynamicQuantizeLinear: uint8 with a per-call scale and
zero point, computed from the tensor itself, so no calibration set is involved), feeding MatMulInteger /
DynamicQuantizeMatMul kernels (VNNI/AMX where the CPU has them). `MatMulConstBOnly` keeps the attention
score/value products (both operands activations) in fp32. Not a TensorRT artifact: TensorRT wants `int8`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from hrm_export.core.errors import require
from hrm_export.precision.int8_qdq import (
    DEFAULT_KEEP,
    linear_facts,
    linear_nodes,
    nonzero_zero_points,
    quiet_quantizer,
    save_unquantized,
)

ORT_INSTALL = "pip install 'hrm-export[ort]'"


def quantize_cpu(fp32_path: Path, out_path: Path, keep_fp32: Iterable[str] = DEFAULT_KEEP) -> dict:
    """Write the dynamic-INT8 graph of `fp32_path` to `out_path`; returns facts for the manifest's made_by."""
    onnx = require("onnx", ORT_INSTALL)
    ort = require("onnxruntime", ORT_INSTALL)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep_fp32 = tuple(keep_fp32)
    model = onnx.load(str(fp32_path))
    quantize, kept, mods = linear_nodes(model, keep_fp32)
    out_path = Path(out_path)
    facts = {"tool": "onnxruntime.quantization.quantize_dynamic", "version": ort.__version__,
             **linear_facts(quantize, kept, mods, keep_fp32)}
    if not quantize:
        return save_unquantized(model, out_path, facts)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        with quiet_quantizer():
            quantize_dynamic(str(fp32_path), str(tmp), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                             nodes_to_quantize=quantize, extra_options={"MatMulConstBOnly": True})
        bad = [b for b in nonzero_zero_points(onnx.load(str(tmp))) if "computed at run time" not in b]
        assert not bad, f"quantizer wrote non-zero weight zero points: {bad[:5]}"
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        **facts,
        "options": {"op_types": ["MatMul"], "weight_type": "QInt8", "MatMulConstBOnly": True,
                    "activations": "uint8, per-call scale/zero point (DynamicQuantizeLinear)"},
    }
