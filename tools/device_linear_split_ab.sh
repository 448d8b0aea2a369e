#!/usr/bin/env bash
# On the GPU machine (carry [".carry"]): decides the streamed flat GEMM's split of K and where the
# O and down projections run at batch 9-16, in one call on one binary.
#  1. The flat GEMM tests (forced splits on both mainloops, the norm prologue, determinism).
#  2. bench_linear at M = 1..16 on every shape: the "alt splits" column times the other split
#     choice beside the plan's, and "read" the plain read of the same bytes (the shape's ceiling).
#  3. fdpp bench, Llama-2-7B shape, prompt 128, batch 1 and 16 at context 128: split K off and on
#     (FDPP_FLAT_GEMM_SPLIT_K), each with the built-in table and with a table (written here) that
#     sends O [4096, 4096] and down [4096, 11008] to the flat GEMM up to M = 16. Two rounds,
#     alternating, so that drift shows as spread. Then session 5's command (prefill 1024, contexts
#     128 and 3968) once with the built-in table, for issue 5's batch-16 figure.
# Logs under $OUT; the decode rows are printed last.
# Usage: bash tools/device_linear_split_ab.sh [--skip-build] [--rounds N (default 2)]
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
build=1 rounds=2
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-build) build=0; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--skip-build] [--rounds N]" >&2; exit 2 ;;
  esac
done
if [ "$build" = 1 ]; then
  for f in .carry/debs/libpcre2-dev_*.deb; do dpkg -x "$f" /; done
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFDPP_SERVER=OFF \
    >"$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  cmake --build build -j"$(nproc)" --target fdpp_gpu_tests bench_linear bench_attention fdpp >"$OUT/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$OUT/build.log" | head -40; exit 1; }
fi
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "# $gpu"
echo "== flat GEMM tests"
timeout 300 ./build/tests/fdpp_gpu_tests --gtest_filter='GpuFlatGemm.*' 2>&1 | tee "$OUT/flat_tests.log" |
  grep -E "^\[  (FAILED|PASSED) |Failure|tests ran" | head -20
echo "== bench_linear"
timeout 300 ./build/bench_linear --iters 30 --m 1,4,8,16 >"$OUT/bench_linear.log" 2>&1
grep -E "^\| " "$OUT/bench_linear.log" | cut -d'|' -f2,5,8,11,13,14,22 | head -48
table=$OUT/o_down_flat.json
python3 - "$gpu" "$table" <<'PY'
import json, sys
gpu, path = sys.argv[1], sys.argv[2]
entries = [{"gpu": gpu, "dtype": "F16", "n": n, "k": k, "m1": 3, "m2": 16} for n, k in ((4096, 4096), (4096, 11008))]
json.dump({"format": "fdpp-linear-table", "version": 1, "entries": entries}, open(path, "w"), indent=1)
PY
echo "== fdpp bench (prompt 128, context 128): split K x table, $rounds round(s)"
for ((round = 1; round <= rounds; ++round)); do
  for split in 0 1; do
    for tab in builtin o_down_flat; do
      log=$OUT/bench_r${round}_split${split}_$tab.log
      if [ "$tab" = builtin ]; then t=/nonexistent-table.json; else t=$table; fi
      FDPP_FLAT_GEMM_SPLIT_K=$split FDPP_LINEAR_TABLE=$t timeout 240 ./build/fdpp bench --shape llama2-7b \
        --prefill 128 --batch 1,16 --context 128 --steps 32 >"$log" 2>&1
      grep -E "^\| decode" "$log" | sed "s/^/r$round split=$split $tab /"
    done
  done
done
echo "== fdpp bench, session 5's command, built-in table, split K off"
FDPP_FLAT_GEMM_SPLIT_K=0 FDPP_LINEAR_TABLE=/nonexistent-table.json timeout 300 ./build/fdpp bench --shape llama2-7b \
  --prefill 1024 --batch 1,16 --context 128,3968 --steps 32 >"$OUT/bench_s5.log" 2>&1
grep -E "^\| (decode|prefill)" "$OUT/bench_s5.log"
