#!/usr/bin/env bash
# On the GPU machine (carry [".carry"]): for each named shape, write a random-weight checkpoint,
# dump HF's golden logits, run the conformance test against it, then delete it. Pipelined so the
# device's minutes go further: the build runs beside the first checkpoint's writing, and the next
# checkpoint is written while the current one is tested (at most two on disk: ~30 GB).
# Usage: bash tools/device_conformance.sh [--suite] [shape:dtype ...]
#   (default shapes: the four of issue 5; --suite also runs the whole GPU suite at the end)
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
suite=0
[ "${1:-}" = "--suite" ] && { suite=1; shift; }
specs=${*:-"llama2-7b:float16 llama3-8b:bfloat16 qwen2-7b:bfloat16 mistral-7b:bfloat16"}
source tools/device_build.sh
rm -rf /tmp/conf-*  # left by an interrupted run
start=$SECONDS
stamp() { echo "[$((SECONDS - start)) s] $*"; }

device_build fdpp_gpu_tests &  # prints the first errors itself
build_pid=$!

# Writes each checkpoint and its golden logits, then marks it ready; waits while two are on disk.
prepare_all() {
  for spec in $specs; do
    local shape=${spec%%:*} dtype=${spec##*:} dir=/tmp/conf-${spec%%:*}
    while [ "$(find /tmp -maxdepth 1 -name 'conf-*' -type d | wc -l)" -ge 2 ]; do sleep 2; done
    python3 tools/make_random_llama.py "$shape" "$dir" --dtype "$dtype" 2>&1 | tail -1
    python3 tools/hf_golden.py "$dir" 2>&1 | tail -1
    touch "$dir.ready"
  done
}
prepare_all > >(while read -r line; do stamp "$line"; done) 2>&1 &
prepare_pid=$!

wait "$build_pid" || { kill "$prepare_pid"; exit 1; }
stamp "built fdpp_gpu_tests"
for spec in $specs; do
  shape=${spec%%:*}; dir=/tmp/conf-$shape
  while [ ! -e "$dir.ready" ]; do
    kill -0 "$prepare_pid" 2>/dev/null || { stamp "$shape: no checkpoint was written"; break; }
    sleep 2
  done
  [ -e "$dir.ready" ] || continue
  stamp "== $spec"
  FDPP_CONFORMANCE_DIRS=$dir ./build/tests/fdpp_gpu_tests --gtest_filter='GpuConformance*' 2>&1 |
    grep -E "relative L2|top-1|OK|FAILED|Failure|Expected|Which" | tee -a "$OUT/conformance.log"
  rm -rf "$dir" "$dir.ready"
done
wait "$prepare_pid"
stamp "conformance done"
if [ "$suite" = 1 ]; then
  ./build/tests/fdpp_gpu_tests 2>&1 | tee "$OUT/gpu_tests.log" |
    grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which|tests ran" | head -40
  stamp "suite done"
fi
