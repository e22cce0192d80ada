#!/usr/bin/env bash
# `hrm-export bench` on a lent GPU machine: the same suite as on the host, on CUDA, results as files.
#
# Run from the repository root on the GPU machine:   OUT=/path/to/results benchmarks/run_gpu.sh [BUNDLE] [bench args...]
# Writes $OUT/bench.json (the full report), $OUT/bench.png (latency against minutes), $OUT/bench.md (tables),
# $OUT/bench.log (stderr), $OUT/environment.txt (nvidia-smi, pip freeze) and $OUT/exit_code.
# BUNDLE: an exported bundle (manifest.json + ONNX); default: a manifest-only bundle made here, which benches
# the PyTorch backends (eager fp32/bf16) and lists ONNX Runtime / TensorRT as skipped with the reason.
# Exit code: that of `hrm-export bench` (0 all targets met, 3 a target for this GPU class missed).
set -uo pipefail

OUT="${OUT:-bench-out}"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"  # DEVICE=cpu: a dry run of this script on the host
BUNDLE=""
if [[ -n "${1:-}" && -d "$1" ]]; then BUNDLE="$1"; shift; fi
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# Packages the GPU machine may lack and cannot download: install them from wheels carried along
# (engines/wheels, made on the host with `pip download`, see benchmarks/README.md).
if [[ -d engines/wheels ]]; then
  "$PY" -m pip install -q --no-index --find-links engines/wheels typer rich psutil safetensors matplotlib 2>&1 | tail -2
fi
missing=$("$PY" - <<'PY'
import importlib.util as u
print(" ".join(m for m in ("torch", "numpy", "typer", "rich", "psutil", "safetensors") if u.find_spec(m) is None))
PY
)
if [[ -n "$missing" ]]; then
  echo "error: missing Python packages on this machine: $missing" >&2
  echo "hint: on the host run: pip download --only-binary :all: -d engines/wheels $missing; carry engines/wheels" >&2
  echo 1 > "$OUT/exit_code"; exit 1
fi
if [[ "$DEVICE" == cuda* ]]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: torch sees no CUDA device')" || {
    echo 1 > "$OUT/exit_code"; exit 1; }
fi

{ nvidia-smi 2>&1; echo; "$PY" -m pip freeze 2>/dev/null | grep -iE '^(torch|onnx|onnxruntime|tensorrt|nvidia-)'; } \
  > "$OUT/environment.txt"

if [[ -z "$BUNDLE" ]]; then
  BUNDLE="$OUT/bundle"
  "$PY" -c "from hrm_export.bench import torch_only_bundle; torch_only_bundle('$BUNDLE')" 2>>"$OUT/bench.log"
fi

plot=(--plot "$OUT/bench.png")
"$PY" -c "import matplotlib" 2>/dev/null || plot=()  # no matplotlib: JSON and Markdown only
"$PY" -m hrm_export bench "$BUNDLE" --device "$DEVICE" --batch 1,8,128 --json "${plot[@]}" --markdown "$OUT/bench.md" \
  "$@" > "$OUT/bench.json" 2>>"$OUT/bench.log"
rc=$?
echo "$rc" > "$OUT/exit_code"
[[ -s "$OUT/bench.md" ]] && cat "$OUT/bench.md"
echo "hrm-export bench exit code $rc; results in $OUT" >&2
exit "$rc"
