#!/usr/bin/env bash
# Build the C++ runtime: fetch its dependencies once (fetch_deps.sh), then configure and build
#   cpp/build       (default)  Release: libhrm_runtime.a, hrm_run, the test programs
#   cpp/build-asan  (asan)     the unit and bad-input tests with AddressSanitizer + UndefinedBehaviorSanitizer
# Incremental: a second run rebuilds only what changed. Usage: cpp/build.sh [asan] [PYTHON]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
variant="${1:-release}"
"$HERE/fetch_deps.sh" ${2:+"$2"}
case "$variant" in
  release) dir="$HERE/build"; flags=(-DCMAKE_BUILD_TYPE=Release); targets=() ;;
  asan) dir="$HERE/build-asan"; flags=(-DCMAKE_BUILD_TYPE=Debug -DHRM_SANITIZE=ON); targets=(--target hrm_unit_tests) ;;
  *) echo "build.sh: unknown variant '$variant' (release or asan)" >&2; exit 2 ;;
esac
generator=()
if [[ ! -f "$dir/CMakeCache.txt" ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S "$HERE" -B "$dir" "${generator[@]}" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
