#!/usr/bin/env bash
# On the GPU machine: where one decode attention row spends its time, from Nsight Compute. One
# launch of the split kernel (after three warm-up launches) of one bench_attention row: speed of
# light, memory workload, warp stall reasons, scheduler and occupancy. The full report goes to
# $OUT/attention_ncu.txt; the lines that say what bounds the kernel are printed.
# Usage: bash tools/device_attention_ncu.sh [BATCH,CONTEXT,KV_HEADS (default 16,32768,8)] [KERNEL regex]
set -uo pipefail
row=${1:-16,32768,8} kernel=${2:-split_kv}
source tools/device_build.sh
device_build bench_attention || exit 1
report=${OUT:-/tmp}/attention_ncu.txt
ncu --clock-control none -k "regex:$kernel" --launch-skip 3 --launch-count 1 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
  --section SchedulerStats --section Occupancy --section LaunchStats \
  ./build/bench_attention --only "$row" >"$report" 2>&1 || { tail -20 "$report"; exit 1; }
grep -E "split_kv|Duration|DRAM Throughput|Memory Throughput|L2 Hit|Achieved Occupancy|Theoretical Occupancy|Registers Per|Issued Warp|No Eligible|Active Warps|Eligible Warps|Stall|Warp Cycles Per|Block Limit" "$report" | head -60
