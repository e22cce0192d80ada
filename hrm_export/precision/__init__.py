"""`hrm-export precision`: bf16 / INT8 variants of a bundle's fp32 graphs — make them (variants.py), judge them at
the decision level (judge.py, report.py), plan their fp32 islands (planner.py), time the CPU INT8 (cpu_bench.py).

onnx, onnxruntime and matplotlib are imported inside the functions that need them; this module holds only what
the command line shows.
"""

VARIANTS = ("bf16", "int8", "int8-cpu")  # bf16 also writes bf16-emulated
METHODS = ("max", "entropy", "percentile")  # INT8 calibration: how activation ranges are set
# Percentile (int8_qdq.PERCENTILE of |activation|) by default: on the trained model, max ranges let a few outlier
# activations set each per-tensor scale, and the L-module's INT8 logits missed their 0.1 budget by 20 % (0.12 at
# the latency profile's max point); percentile ranges passed every row with decisions unchanged (docs/precision.md).
DEFAULT_METHOD = "percentile"
