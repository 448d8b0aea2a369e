#!/usr/bin/env bash
# On the GPU machine (carry [".carry"]): build, run the PDL tests, then the end-to-end decode
# bench with programmatic dependent launch off and on in the same call, the same
# bench with the flat GEMM forced for every linear, then the whole GPU test suite. Logs under $OUT.
# Usage: bash tools/device_pdl_ab.sh [bench batches, default 1,16] [bench contexts, default 128]
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for f in .carry/debs/libpcre2-dev_*.deb; do dpkg -x "$f" /; done
export FDPP_SHARED_DIR=$PWD/.carry
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFDPP_SERVER=OFF \
  >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build build -j16 --target fdpp_gpu_tests bench_linear fdpp >"$OUT/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$OUT/build.log" | head -40; exit 1; }
echo "== PDL tests"
./build/tests/fdpp_gpu_tests --gtest_filter='*Programmatic*' 2>&1 | tee "$OUT/pdl_tests.log" |
  grep -E "^\[  (FAILED|PASSED) |Failure|Expected|tests ran" | head -20
echo "== fdpp bench, PDL off then on"
for pdl in 0 1; do
  echo "-- FDPP_PDL=$pdl"
  FDPP_PDL=$pdl ./build/fdpp bench --shape llama2-7b --prefill 1024 --batch "${1:-1,16}" --context "${2:-128}" \
    --steps 32 2>&1 | tee "$OUT/bench_pdl$pdl.log" | grep -vE "^\s*$" | tail -8
done
echo "== fdpp bench, PDL on, flat GEMM for every linear it can serve (FDPP_LINEAR_IMPL=flat_gemm)"
FDPP_LINEAR_IMPL=flat_gemm ./build/fdpp bench --shape llama2-7b --prefill 128 --batch "${1:-1,16}" --context "${2:-128}" \
  --steps 32 2>&1 | tee "$OUT/bench_flat.log" | grep -E "^\| decode"
echo "== all GPU tests"
timeout 300 ./build/tests/fdpp_gpu_tests 2>&1 | tee "$OUT/gpu_tests.log" |
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|tests ran" | head -30
