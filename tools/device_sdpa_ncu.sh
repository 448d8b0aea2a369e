#!/usr/bin/env bash
# On the GPU machine: what torch SDPA runs for one decode row and how it reads, from Nsight Compute,
# to set beside fdpp's split kernel on the same row (tools/device_attention_ncu.sh). One call of
# bench/sdpa_one_row.py after three warm-ups; every kernel of that call: launch shape, registers,
# shared memory, duration, DRAM throughput, occupancy and warp stalls. The full report goes to
# $OUT/sdpa_ncu.txt. First run in session 27 (docs/PERF.md: cuDNN's sm80 flash kernel).
# Usage: bash tools/device_sdpa_ncu.sh [BATCH,CONTEXT,KV_HEADS (default 16,32768,8)]
set -uo pipefail
row=${1:-16,32768,8}
report=${OUT:-/tmp}/sdpa_ncu.txt
ncu --clock-control none --profile-from-start off --launch-count 8 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
  --section SchedulerStats --section Occupancy --section LaunchStats \
  python3 bench/sdpa_one_row.py "$row" >"$report" 2>&1 || { tail -20 "$report"; exit 1; }
grep -E "sdpa_one_row|Context [0-9]+, Stream|Grid Size|Block Size|Registers Per|Shared Memory Per Block|Duration|DRAM Throughput|Memory Throughput|L2 Hit|Achieved Occupancy|Theoretical Occupancy|Issued Warp|No Eligible|Eligible Warps|Warp Cycles Per|Block Limit" \
  "$report" | head -80
