#!/usr/bin/env bash
# Fetch what the C++ build needs into cpp/third_party/ (ignored by git). Idempotent: each part is fetched
# once and marked done by a stamp naming its version, so later runs are offline.
#
#   ONNX Runtime headers   Debian trixie libonnxruntime-dev (1.21; the C API is backward compatible with
#                          the newer library), fetched with a private apt configuration: its own sources
#                          list, state and cache, the system's dpkg status; nothing on the system changes
#   ONNX Runtime library   the onnxruntime wheel already in the project's .venv (libonnxruntime.so.1.X)
#   nlohmann/json, gtest   Debian trixie nlohmann-json3-dev and googletest (sources, built with the tests)
#   OpenSSL libcrypto      the system's libssl-dev (fetched the same way when its headers are missing)
#   TensorRT 10 headers    the kernel-lens 2.0.1 wheel (kernel_lens/include/tensorrt), --no-deps
#   CUDA runtime           nvidia-cuda-runtime + nvidia-cuda-crt 13.5 wheels (headers, libcudart.so.13)
#   TensorRT lean runtime  tensorrt-lean-cu13-libs 10.16.1.11 (libnvinfer_lean.so.10; same major as the headers)
#
# Usage: cpp/fetch_deps.sh [PYTHON]   (PYTHON: the project's interpreter, default .venv/bin/python)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TP="$HERE/third_party"
PYTHON="${1:-${PYTHON:-$ROOT/.venv/bin/python}}"
[[ "$PYTHON" == /* || "$PYTHON" != */* ]] || PYTHON="$(pwd)/$PYTHON"  # a relative path must survive the cd's below
SUITE=trixie
DEBS=(libonnxruntime-dev nlohmann-json3-dev googletest)
KERNEL_LENS=kernel-lens==2.0.1
CUDA_WHEELS=("nvidia-cuda-runtime==13.5.*" "nvidia-cuda-crt==13.5.*")
TRT_LEAN=tensorrt-lean-cu13-libs==10.16.1.11

say() { echo "fetch_deps: $*" >&2; }
fail() { echo "fetch_deps: error: could not fetch $*" >&2; exit 1; }
done_already() { [[ -f "$TP/.stamp-$1" && "$(cat "$TP/.stamp-$1")" == "$2" ]]; }
mark_done() { echo "$2" > "$TP/.stamp-$1"; }
mkdir -p "$TP"

# -- Debian packages: a private apt configuration, `apt-get download`, `dpkg-deb -x` ----------------------
fetch_debs() {
  local want="$SUITE ${DEBS[*]}"
  if [[ ! -f /usr/include/openssl/evp.h ]]; then DEBS+=(libssl-dev); want+=" libssl-dev"; fi
  done_already debs "$want" && return 0
  say "Debian $SUITE: ${DEBS[*]} (private apt configuration)"
  local apt="$TP/apt"
  mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$TP/root"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SUITE main" \
    > "$apt/sources.list"
  local opts=(-q -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State=$apt/state" -o "Dir::Cache=$apt/cache" -o Dir::State::status=/var/lib/dpkg/status
              -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Languages=none)
  apt-get "${opts[@]}" update >/dev/null || fail "the Debian $SUITE package lists (apt-get update)"
  (cd "$apt/debs" && rm -f ./*.deb && apt-get "${opts[@]}" download "${DEBS[@]}" >/dev/null) \
    || fail "Debian packages ${DEBS[*]} from $SUITE (apt-get download)"
  for deb in "$apt/debs"/*.deb; do dpkg-deb -x "$deb" "$TP/root" || fail "$(basename "$deb") (dpkg-deb -x)"; done
  [[ -f "$TP/root/usr/include/onnxruntime/onnxruntime_cxx_api.h" ]] || fail "the ONNX Runtime headers"
  mark_done debs "$want"
}

# -- ONNX Runtime library from the onnxruntime wheel in the project's venv -------------------------------
link_ort() {
  [[ -x "$PYTHON" ]] || fail "onnxruntime's library: no Python at $PYTHON (run make install first)"
  local dir lib
  dir="$("$PYTHON" -c 'import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))')" \
    || fail "onnxruntime's library: $PYTHON cannot import onnxruntime"
  lib="$(ls "$dir"/capi/libonnxruntime.so.1.* 2>/dev/null | head -n1)"
  [[ -n "$lib" ]] || fail "onnxruntime's library: no capi/libonnxruntime.so.1.* in $dir"
  mkdir -p "$TP/ort/lib"
  # The wheel ships libonnxruntime.so.1.X without the .so.1 link its SONAME names; the link lets the
  # dynamic loader find it through the build's rpath. The providers' libraries (CUDA with onnxruntime-gpu)
  # are loaded from beside it, so they are linked too.
  ln -sfn "$lib" "$TP/ort/lib/libonnxruntime.so.1"
  for provider in "$dir"/capi/libonnxruntime_providers_*.so; do
    [[ -e "$provider" ]] && ln -sfn "$provider" "$TP/ort/lib/$(basename "$provider")"
  done
  say "ONNX Runtime library: $lib"
}

# -- wheels: TensorRT headers, CUDA runtime, TensorRT lean runtime -----------------------------------------
pip_download() {  # pip_download WHAT SPEC...: download wheels --no-deps into third_party/wheels
  local what="$1"; shift
  mkdir -p "$TP/wheels"
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$TP/wheels" "$@" >/dev/null 2>&1 \
    || fail "$what ($*; pip download)"
}
unzip_wheel() {  # unzip_wheel GLOB DEST: extract the newest wheel matching GLOB into DEST
  local whl
  whl="$(ls -t "$TP/wheels"/$1 2>/dev/null | head -n1)"
  [[ -n "$whl" ]] || fail "wheel $1"
  mkdir -p "$2" && (cd "$2" && "$PYTHON" -m zipfile -e "$whl" .) || fail "$(basename "$whl") (unzip)"
}
fetch_tensorrt() {
  local want="$KERNEL_LENS ${CUDA_WHEELS[*]} $TRT_LEAN"
  done_already wheels "$want" && return 0
  say "wheels: $want"
  pip_download "the TensorRT 10 headers" "$KERNEL_LENS"
  pip_download "the CUDA runtime" "${CUDA_WHEELS[@]}"
  pip_download "the TensorRT lean runtime" "$TRT_LEAN"
  rm -rf "$TP/whl"
  unzip_wheel 'kernel_lens-2.0.1-*.whl' "$TP/whl/kernel_lens"
  unzip_wheel 'nvidia_cuda_runtime-13.5.*.whl' "$TP/whl/cuda"
  unzip_wheel 'nvidia_cuda_crt-13.5.*.whl' "$TP/whl/cuda"
  unzip_wheel 'tensorrt_lean_cu13_libs-10.16.1.11-*.whl' "$TP/whl/trt"
  rm -rf "$TP/tensorrt" "$TP/cuda"
  mkdir -p "$TP/tensorrt/lib" "$TP/cuda"
  mv "$TP/whl/kernel_lens/kernel_lens/include/tensorrt" "$TP/tensorrt/include"
  mv "$TP/whl/cuda/nvidia/cu13/include" "$TP/cuda/include"
  mv "$TP/whl/cuda/nvidia/cu13/lib" "$TP/cuda/lib"
  mv "$TP/whl/trt/tensorrt_lean_libs/libnvinfer_lean.so.10" "$TP/tensorrt/lib/"
  rm -rf "$TP/whl"
  [[ -f "$TP/tensorrt/include/NvInferRuntime.h" && -f "$TP/cuda/include/crt/host_config.h" \
     && -f "$TP/cuda/lib/libcudart.so.13" ]] || fail "the TensorRT/CUDA files from the wheels"
  local hdr_major lean_major="${TRT_LEAN#*==}"
  lean_major="${lean_major%%.*}"
  hdr_major="$(sed -n 's/^#define TRT_MAJOR_ENTERPRISE \([0-9]*\).*/\1/p' "$TP/tensorrt/include/NvInferVersion.h")"
  [[ "$hdr_major" == "$lean_major" ]] \
    || fail "matching TensorRT majors: headers $hdr_major, lean runtime $lean_major (10.x headers crash in an 11.x library)"
  mark_done wheels "$want"
}

fetch_debs
link_ort
fetch_tensorrt
say "ready in $TP"
