"""`hrm-export export`: the reference HRM → DIR/{h_module,l_module,l_step}.onnx + DIR/manifest.json
(`hrm_export.export.bundle.export_bundle`). This module holds only the defaults the command line shows, so
that `hrm-export --help` stays light."""

# Opset 23 brings the fused Attention and RMSNormalization ops: ≈10 % faster on ONNX Runtime CPU, parsed by
# TensorRT ≥ 10.15 (Attention since 10.14, RMSNormalization since 10.15; TensorRT 11 reads up to opset 25).
# For an older TensorRT 10 pass --opset 18 (decomposed attention and norms). See docs/parity.md.
DEFAULT_OPSET = 23
MIN_OPSET = 18
DEFAULT_PROFILES = ("latency", "throughput")
