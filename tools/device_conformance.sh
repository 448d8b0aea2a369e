#!/usr/bin/env bash
# On the GPU machine: for each named shape, write a random-weight checkpoint, dump HF's golden
# logits, run the conformance test against it, then delete it (disk holds one 7B at a time).
# Usage: bash tools/device_conformance.sh [shape:dtype ...]   (default: the four of the issue)
set -uo pipefail
OUT=${OUT:-/tmp/out}
for f in .carry/debs/libpcre2-dev_*.deb; do dpkg -x "$f" /; done
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a >"$OUT/cmake.log" 2>&1
cmake --build build -j16 --target fdpp_gpu_tests >"$OUT/build.log" 2>&1 || { grep error "$OUT/build.log" | head; exit 1; }
specs=${*:-"llama2-7b:float16 llama3-8b:bfloat16 qwen2-7b:bfloat16 mistral-7b:bfloat16"}
for spec in $specs; do
  shape=${spec%%:*}; dtype=${spec##*:}; dir=/tmp/conf-$shape
  python3 tools/make_random_llama.py "$shape" "$dir" --dtype "$dtype" 2>&1 | tail -1
  python3 tools/hf_golden.py "$dir" 2>&1 | tail -1
  FDPP_CONFORMANCE_DIRS=$dir ./build/tests/fdpp_gpu_tests --gtest_filter='GpuConformance*' 2>&1 |
    grep -E "relative L2|OK|FAILED|Failure" | tee -a "$OUT/conformance.log"
  rm -rf "$dir"
done
