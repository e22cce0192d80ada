#!/usr/bin/env bash
# Make engines/wheels on the host: the wheels of what the lent GPU image lacks for benchmarks/run_gpu.sh, for its
# Python (3.12). Its image has torch, onnx, onnxscript, onnxruntime, numpy, pandas, typer, rich, psutil,
# safetensors and matplotlib, but not pydantic (hrm_export.core's config schemas). The versions are this .venv's.
# About 2.8 MB; engines/ is git-ignored, so name engines/wheels in the run's carry list (benchmarks/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
PYVER="${GPU_PYTHON:-3.12}"
mkdir -p engines/wheels
pins=$("$PY" - <<'EOF'
import importlib.metadata as md
print(" ".join(f"{d}=={md.version(d)}" for d in
               ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions")))
EOF
)
# shellcheck disable=SC2086  # $pins is a list of requirement strings
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d engines/wheels $pins
ls -1 engines/wheels
