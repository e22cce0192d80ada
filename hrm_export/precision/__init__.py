"""bf16 / INT8 variants of a bundle's fp32 graphs: make them, verify them at the decision level, plan their islands.

onnx, onnxruntime and matplotlib are imported inside the functions that need them.
"""

from hrm_export.precision.variants import make_variants

__all__ = ["make_variants"]
