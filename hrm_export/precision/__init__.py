"""`hrm-export precision`: bf16 / INT8 variants of a bundle's fp32 graphs — make them (variants.py), judge them at
the decision level (judge.py, report.py), plan their fp32 islands (planner.py), time the CPU INT8 (cpu_bench.py).

onnx, onnxruntime and matplotlib are imported inside the functions that need them; this module holds only what
the command line shows.
"""

VARIANTS = ("bf16", "int8", "int8-cpu")  # bf16 also writes bf16-emulated
