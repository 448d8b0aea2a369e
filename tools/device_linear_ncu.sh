#!/usr/bin/env bash
# On the GPU machine (carry [".carry"]): where one streamed flat-GEMM launch of a bench_linear
# shape spends its time, from Nsight Compute, at each M given: DRAM and L2/L1 traffic, the hit
# rates that say how often x comes from L1, stalls and occupancy. Full reports go to
# $OUT/linear_ncu_M.txt; the lines that say what bounds the kernel are printed.
# Usage: bash tools/device_linear_ncu.sh [SHAPE (default "L3-8B qkv")] [M ... (default 8 16)]
set -uo pipefail
shape=${1:-L3-8B qkv}
shift || true
ms=${*:-"8 16"}
source tools/device_build.sh
device_build bench_linear || exit 1
for m in $ms; do
  report=${OUT:-/tmp}/linear_ncu_$m.txt
  # The first streamed launches of the row are bench_linear's warm-up of the plain variant.
  ncu --clock-control none -k "regex:flat_gemm_streamed" --launch-skip 3 --launch-count 1 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
    --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats \
    ./build/bench_linear --iters 5 --shape "$shape" --m "$m" >"$report" 2>&1 || { tail -20 "$report"; exit 1; }
  echo "== $shape, M = $m"
  grep -E "flat_gemm_streamed|Duration|DRAM Throughput|Memory Throughput|L1/TEX Hit|L2 Hit|L1/TEX Cache Throughput|L2 Cache Throughput|Achieved Occupancy|Registers Per|Grid Size|Issued Warp|No Eligible|Stall|Warp Cycles Per" \
    "$report" | head -30
done
