#!/usr/bin/env bash
# On the GPU machine, after a build in ./build: per-kernel time of one decode step of a named shape
# with Nsight Compute (eager launches, so every kernel is seen), as a table.
# Usage: bash tools/device_profile.sh [shape=llama2-7b] [batch=1] [context=128] [layers=32]
set -euo pipefail
OUT=${OUT:-/tmp/out}
shape=${1:-llama2-7b} batch=${2:-1} context=${3:-128} layers=${4:-32}
csv="$OUT/ncu_${shape}_b${batch}_c${context}.csv"
FDPP_CUDA_GRAPHS=0 ncu --clock-control none --metrics gpu__time_duration.sum --csv \
  ./build/fdpp bench --shape "$shape" --prefill 16 --batch "$batch" --context "$context" --steps 2 >"$csv" 2>"$OUT/ncu.err" ||
  { tail -20 "$OUT/ncu.err"; exit 1; }
python3 tools/kernel_breakdown.py "$csv" --layers "$layers"
