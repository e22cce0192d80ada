"""INT8 for TensorRT: explicit, symmetric Q/DQ (zero points 0, per-channel weights), calibrated on real activations.

TensorRT 11 has no INT8 flag or calibrator: the graph says where INT8 is. Quantizer: ONNX Runtime's
`quantize_static` in QDQ format with symmetric activations and weights (ModelOpt's ONNX PTQ would do as well; ORT's
quantizer is already a dependency, runs the calibration on the CPU provider in-process, and takes per-node
exclusions, which is what the precision planner bisects over). Only Linear layers (MatMul/Gemm with a constant
weight) are quantized: their Q/DQ pairs are what TensorRT fuses into INT8 GEMMs. The attention matmuls (inside the
opset-23 `Attention` op, or the score/value MatMuls of an opset-18 graph), norms, FiLM and heads stay in fp32 —
see docs/precision.md for the measurements behind the default exclusions.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from hrm_export.core.errors import UserError, require
from hrm_export.core.specs import FP32_MODULES
from hrm_export.precision import DEFAULT_METHOD, METHODS
from hrm_export.precision.scopes import matches, weight_matmuls
from model_src.atomic import atomic_output

ORT_INSTALL = "pip install 'hrm-export[ort]'"
# Kept in fp32 by default in every INT8 graph: the decision heads (3- and 2-wide outputs: an INT8 rounding step
# there is a direct logit error), the whole H-module with its FiLM generator (core.specs.FP32_MODULES: it runs once
# a day and its γ/β scale every L activation), and the input embeddings: their inputs are raw market features of
# very different scales (returns ~1e-3 beside volume z-scores ~1), so one per-tensor INT8 scale rounds the small
# ones away. Measured on an earlier default model (docs/precision.md): embeddings in INT8 gave FiLM γ max error
# 0.055 at one look-back day, 0.001 with them in fp32; they are 8- and 11-wide GEMMs, so fp32 costs nothing there.
# And the first L block's MLP output projection: `precision plan --precision int8` on the default model, which reads
# its daily book, named it alone (its 3264-wide GELU input has outliers a calibrated per-tensor scale clips, and
# what it adds to the residual stream passes through every later FiLM); in INT8 it made the composed logits
# 0.139 off, in fp32 0.090 — 1/20 of the L-module's Linear layers, 7.5 % of its FLOPs.
DEFAULT_KEEP = ("*.heads", *FP32_MODULES, "*.embed", "l_module.blocks.0.mlp.proj")
PERCENTILE = 99.999


def linear_nodes(model, keep_fp32: Iterable[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """Split the graph's Linear nodes into (to quantize, kept fp32) by module glob; also {node: module}."""
    mods = weight_matmuls(model)
    keep = [n for n, m in mods.items() if matches(m, keep_fp32)]
    return [n for n in mods if n not in keep], keep, mods


def linear_facts(quantize: list[str], kept: list[str], mods: dict[str, str], keep_fp32: tuple[str, ...]) -> dict:
    """What was quantized and what was kept, by module and node, for the manifest's made_by."""
    return {"quantized_linears": sorted({mods[n] for n in quantize}), "keep_fp32": list(keep_fp32),
            "excluded_nodes": sorted(kept), "excluded_modules": sorted({mods[n] for n in kept})}


def save_unquantized(model, out_path: Path, facts: dict) -> dict:
    """Every Linear layer is kept fp32: write the graph unchanged. (ORT's quantizers read an empty
    nodes_to_quantize as "every node", the opposite of what was asked.)"""
    import onnx

    with atomic_output(out_path) as tmp:
        onnx.save_model(model, str(tmp))
    return {**facts, "options": {"note": "every Linear layer kept fp32: graph unchanged"}}


def quantize_qdq(fp32_path: Path, out_path: Path, rows: Sequence[dict[str, np.ndarray]], method: str = DEFAULT_METHOD,
                 keep_fp32: Iterable[str] = DEFAULT_KEEP) -> dict:
    """Write the Q/DQ INT8 graph of `fp32_path` to `out_path`; returns facts for the manifest's made_by."""
    onnx = require("onnx", ORT_INSTALL)
    ort = require("onnxruntime", ORT_INSTALL)
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if method not in METHODS:
        raise UserError(f"unknown calibration method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    if not rows:
        raise UserError("no calibration rows", hint="raise --calibration-size")
    keep_fp32 = tuple(keep_fp32)
    model = onnx.load(str(fp32_path))
    quantize, kept, mods = linear_nodes(model, keep_fp32)
    facts = {"tool": "onnxruntime.quantization.quantize_static", "version": ort.__version__,
             **linear_facts(quantize, kept, mods, keep_fp32)}
    if not quantize:
        return save_unquantized(model, out_path, facts)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(rows)

        def get_next(self):
            return next(self._it, None)

    calib = {"max": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}[method]
    extra = {
        "ActivationSymmetric": True, "WeightSymmetric": True,  # zero points 0: what TensorRT accepts
        "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},  # one scale per output column of (K, N) weights
        "CalibPercentile": PERCENTILE,
        "CalibTensorRangeSymmetric": True,
        # Q/DQ only on GEMM inputs: an INT8 rounding of the GEMM output (before the bias Add) would add error and
        # is not what TensorRT fuses; its INT8 GEMM kernels write fp32/bf16 outputs.
        "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"],
    }
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        with quiet_quantizer():
            quantize_static(
                str(fp32_path), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["MatMul", "Gemm"], per_channel=True, activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8, nodes_to_quantize=quantize, calibrate_method=calib, extra_options=extra,
            )
        bad = nonzero_zero_points(onnx.load(str(tmp)))
        assert not bad, f"quantizer wrote non-zero zero points: {bad[:5]}"
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
        for aug in out_path.parent.glob("augmented_model*.onnx"):  # ORT's calibration scratch file
            aug.unlink(missing_ok=True)
    return {
        **facts,
        "options": {"quant_format": "QDQ", "activation_type": "QInt8", "weight_type": "QInt8", "per_channel": True,
                    "symmetric": True, "calibration_method": method, "calibration_size": len(rows),
                    **({"percentile": PERCENTILE} if method == "percentile" else {})},
    }


@contextlib.contextmanager
def quiet_quantizer():
    """ORT's quantizers log "consider pre-processing" warnings and histogram chatter on the root logger and stdout;
    the graphs they get are already shape-inferred by the exporter, so keep the user's terminal for our progress."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def nonzero_zero_points(model) -> list[str]:
    """Quantize/DequantizeLinear nodes (and MatMulInteger weights) whose zero point is not all 0."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in model.graph.node if n.op_type == "Constant" and n.attribute}
    bad = []
    for node in model.graph.node:
        zp_index = {"QuantizeLinear": 2, "DequantizeLinear": 2, "MatMulInteger": 3}.get(node.op_type)
        if zp_index is None or len(node.input) <= zp_index or not node.input[zp_index]:
            continue  # absent zero point means 0
        name = node.input[zp_index]
        t = inits.get(name) or consts.get(name)
        if t is None:
            bad.append(f"{node.name}: zero point {name} is computed at run time")
        elif np.any(numpy_helper.to_array(t) != 0):
            bad.append(f"{node.name}: zero point {name} = {numpy_helper.to_array(t).ravel()[:4]}")
    return bad


def qdq_count(model) -> dict[str, int]:
    ops = [n.op_type for n in model.graph.node]
    return {"QuantizeLinear": ops.count("QuantizeLinear"), "DequantizeLinear": ops.count("DequantizeLinear")}
