#!/usr/bin/env bash
# The one prepared GPU check. On a lent GPU machine, in one go and under 8 minutes: export the default bundle,
# verify the PyTorch CUDA candidate (fp32, bf16, bf16 with CUDA graphs) against the fp32 reference, bench PyTorch
# eager, CUDA graphs and torch.compile side by side, and leave everything in one results folder.
#
#   OUT=/path/to/results benchmarks/run_gpu.sh          # from the repository root; see benchmarks/README.md
#   DEVICE=cpu QUICK=1 OUT=/tmp/dry benchmarks/run_gpu.sh   # its dry run on a CPU (tests/test_run_gpu.py)
#
# Environment: OUT (results, default gpu-results) · DEVICE (cuda | cpu) · QUICK=1 (reduced: no streaming in
# verify, batch 1 bench, no torch.compile) · PYTHON (default python3) · CHECKPOINT (default: the built-in model)
# · BUDGET_S (wall-clock budget of the whole run, default 450 s) · WORK (scratch for the bundle; default a temp dir).
#
# $OUT ends with at most 8 files: results.md (read this first), steps.tsv, environment.txt, run.log,
# verify.json (every verify report, by step), bench.json (every bench report, by step), bench.png.
# Exit code: 0 every step ran and passed its gate, 3 a parity or latency gate failed, 1 a step failed, timed out or
# found no time left.
set -uo pipefail

OUT="${OUT:-gpu-results}"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
QUICK="${QUICK:-0}"
BUDGET_S="${BUDGET_S:-450}"
WORK="${WORK:-$(mktemp -d -t hrm-gpu-XXXXXX)}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
START=$(date +%s)
mkdir -p "$OUT" "$WORK"
: > "$OUT/run.log"
printf 'step\tstatus\texit_code\tseconds\tnote\n' > "$OUT/steps.tsv"
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 COLUMNS=160
HRM=("$PY" -m hrm_export)

# What the steps import. The GPU image lacks pydantic: wheels carried along in engines/wheels (made on the host by
# benchmarks/carry_wheels.sh) are installed for whatever is missing, into the scratch folder.
missing() {
  "$PY" - "$@" <<'EOF'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
EOF
}
NEEDED=(torch numpy typer rich psutil safetensors pydantic pandas)
if [[ -n "$(missing "${NEEDED[@]}")" ]] && ls "$HERE"/engines/wheels/*.whl > /dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
    "$HERE"/engines/wheels/*.whl >> "$OUT/run.log" 2>&1 && export PYTHONPATH="$PYTHONPATH:$WORK/site"
fi

# step NAME CAP_S[:MIN_S] COMMAND...: run COMMAND (stdout to $WORK/NAME.json, stderr to run.log) under a timeout
# of CAP_S or what is left of BUDGET_S, whichever is less; record its status, exit code and seconds in steps.tsv.
# With less than 10 s left a step is not started (status no-time, a failure); CAP_S:MIN_S marks an optional step,
# skipped when less than MIN_S is left.
step() {
  local name=$1 cap=${2%%:*} least=10 status=no-time
  [[ "$2" == *:* ]] && least=${2#*:} status=skipped
  shift 2
  local left=$(( BUDGET_S - ($(date +%s) - START) - 15 ))  # 15 s kept for the summary
  (( cap > left )) && cap=$left
  if (( cap < least )); then
    printf '%s\t%s\t\t0\t%s\n' "$name" "$status" "not started: ${left} s left of BUDGET_S=$BUDGET_S" \
      >> "$OUT/steps.tsv"
    echo "$name: not started (no time left)" >&2; return
  fi
  echo "== $name (up to ${cap} s): $*" >> "$OUT/run.log"
  local t0 rc note=""
  t0=$(date +%s)
  timeout --kill-after=10 "$cap" "$@" > "$WORK/$name.json" 2> "$WORK/$name.err"
  rc=$?
  cat "$WORK/$name.err" >> "$OUT/run.log"
  case $rc in 0) status=ok ;; 3) status=gate-failed ;; 124|137) status=timed-out ;; *) status=error ;; esac
  if (( rc == 3 )); then note="a gate failed: results.md has its table"
  elif (( rc != 0 )); then note=$(grep -m1 "^error:" "$WORK/$name.err" || tail -n1 "$WORK/$name.err"); fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$(( $(date +%s) - t0 ))" \
    "$(printf '%s' "$note" | tr '\t\n' '  ' | cut -c1-240)" >> "$OUT/steps.tsv"
  echo "$name: $status (exit $rc, $(( $(date +%s) - t0 )) s)" >&2
}
skip() { printf '%s\tskipped\t\t0\t%s\n' "$1" "$2" >> "$OUT/steps.tsv"; echo "$1: skipped ($2)" >&2; }

on_gpu=0; [[ "$DEVICE" == cuda* ]] && on_gpu=1
if [[ "$QUICK" == 1 ]]; then
  VERIFY=(--profile latency --random-points 0 --no-streaming)
  BENCH=(--batch 1 --quick --seconds 0.05)
else
  VERIFY=(--profile latency)               # min/opt/max + 2 random points, and streamed sessions
  BENCH=(--batch 1,8,128 --seconds 0.3)    # l_step at 0..389 past minutes is in every bench
fi

# 1. Where this ran: GPU, driver, versions, the TensorRT library this machine would use and its answer.
{ nvidia-smi 2>&1 || echo "nvidia-smi: not available"; echo; git -C "$HERE" rev-parse HEAD 2>&1; } \
  > "$OUT/environment.txt"
lacking=$(missing "${NEEDED[@]}")
if [[ -n "$lacking" ]]; then  # nothing below can run: say what to carry, and stop with the summary
  printf 'requirements\terror\t1\t0\terror: missing Python packages: %s; hint: run benchmarks/carry_wheels.sh on the host and carry engines/wheels\n' \
    "$lacking" >> "$OUT/steps.tsv"
  "$PY" "$HERE/benchmarks/gpu_run.py" summary "$WORK" "$OUT" --seconds "$(( $(date +%s) - START ))"
  exit 1
fi
step environment 60 "$PY" "$HERE/benchmarks/gpu_run.py" environment --device "$DEVICE"

# 2. The default bundle, exported here (ONNX + manifest with the latency and throughput profiles). If export cannot
#    run on this image, the PyTorch steps still can: a manifest-only bundle with the same profiles takes its place.
BUNDLE="$WORK/bundle"
step export 180 "${HRM[@]}" export --out "$BUNDLE" ${CHECKPOINT:+--checkpoint "$CHECKPOINT"} --json
if [[ ! -f "$BUNDLE/manifest.json" ]]; then
  step bundle-without-onnx 60 "$PY" "$HERE/benchmarks/gpu_run.py" manifest-only "$BUNDLE" ${CHECKPOINT:+--checkpoint "$CHECKPOINT"}
fi

# 3. Parity of the PyTorch candidate on this device against the fp32 reference on the CPU, judged by the budgets.
step verify-fp32 120 "${HRM[@]}" verify "$BUNDLE" --backend torch --precision fp32 --device "$DEVICE" "${VERIFY[@]}" --json
step verify-bf16 120 "${HRM[@]}" verify "$BUNDLE" --backend torch --precision bf16 --device "$DEVICE" "${VERIFY[@]}" --json
if (( on_gpu )); then
  step verify-bf16-graphs 120 "${HRM[@]}" verify "$BUNDLE" --backend torch --precision bf16 --device "$DEVICE" \
    --cuda-graphs "${VERIFY[@]}" --json
else
  skip verify-bf16-graphs "CUDA graphs need a CUDA device"
fi

# 4. Latency, throughput and device memory: eager and CUDA graphs side by side (bounded in time); all three with
#    torch.compile come last (step 6).
step bench 180 "${HRM[@]}" bench "$BUNDLE" --device "$DEVICE" --backend torch,torch-graphs --precision fp32,bf16 \
  "${BENCH[@]}" --plot "$OUT/bench.png" --markdown "$WORK/bench.md" --json
# 5. The CUDA tests of the suite (runtime streaming with and without graphs, the CUDA candidate's verify) on the
#    tiny model: the code paths the figures above rest on, as assertions.
if (( on_gpu )); then
  step gpu-tests 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider "$HERE/tests/test_runtime_streaming.py" \
    "$HERE/tests/test_verify_torch_candidate.py"
else
  skip gpu-tests "the gpu-marked tests need a CUDA device"
fi

# 5b. Streaming at the floor (docs/benchmarks.md, "Streaming at the floor"): the growing l_step against the static
#     cache (l_step_static; with CUDA graphs, one graph per push length) at t = 0..389, push latency through the
#     runtime, the day recomputed, run_day in chunks. Its verify (the static cache's streamed sessions) is inside
#     verify-fp32 / verify-bf16 / verify-bf16-graphs above.
if (( on_gpu )); then
  step bench-stream 150:60 "$PY" -m hrm_export.bench.streaming "$BUNDLE" --candidates torch/fp32,torch-graphs/fp32,torch-graphs/bf16 \
    --seconds 0.3 --push-days 2 --markdown "$WORK/bench-stream.md" --json -
else
  skip bench-stream "the streaming bench's CPU figures come from python -m hrm_export.bench.streaming on the host"
fi

# 6. What was never timed before a GPU run comes last, in whatever time is left: torch.compile's cold compiles.
if (( on_gpu )) || [[ "$QUICK" != 1 ]]; then
  step bench-all 600 "${HRM[@]}" bench "$BUNDLE" --device "$DEVICE" --backend torch,torch-graphs,torch-compile \
    --precision fp32,bf16 "${BENCH[@]}" --markdown "$WORK/bench-all.md" --json
  step verify-bf16-compile 150:60 "${HRM[@]}" verify "$BUNDLE" --backend torch --precision bf16 --device "$DEVICE" \
    --compile "${VERIFY[@]}" --json
else
  skip bench-all "torch.compile takes minutes on a CPU; the reduced dry run leaves it out"
  skip verify-bf16-compile "torch.compile takes minutes on a CPU; the reduced dry run leaves it out"
fi

# 7. One summary: results.md, verify.json, bench.json; the exit code from the steps.
"$PY" "$HERE/benchmarks/gpu_run.py" summary "$WORK" "$OUT" --seconds "$(( $(date +%s) - START ))"
rc=$?
echo "results in $OUT ($(( $(date +%s) - START )) s); exit code $rc" >&2
exit "$rc"
