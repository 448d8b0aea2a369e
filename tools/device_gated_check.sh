#!/usr/bin/env bash
# On the GPU machine, for the gated SiLU epilogue (branch wip/gated-silu): the GPU suite on this
# tree, then the decode step against every variant staged under .carry/ab (main: `bash
# tools/stage_ab.sh --clear --as base main` here first), two rounds, and bench_linear's gated
# lines on the Llama-2-7B gate/up shape. Carry [".carry"].
# Usage: bash tools/device_gated_check.sh [--tests-only]
set -uo pipefail
source tools/device_build.sh
device_build fdpp fdpp_gpu_tests bench_linear || exit 1
echo "== GPU tests"
./build/tests/fdpp_gpu_tests 2>&1 | grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which|actual|tests ran" | head -40
[ "${1:-}" = "--tests-only" ] && exit 0
echo "== decode steps, ms (prompt 128)"
bash tools/device_ab.sh --rounds 2 fdpp -- \
  '$BUILD/fdpp bench --shape llama2-7b --prefill 128 --batch 1,8,16 --context 128 --steps 32 2>&1 | grep -E "^\| decode"'
echo "== the gated epilogue per launch (bench_linear)"
./build/bench_linear --iters 30 --m 1,4,8,16 --shape "L2-7B gate+up" 2>&1 | grep -E "silu|gated|^\| L2"
