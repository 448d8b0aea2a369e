#!/usr/bin/env bash
# On the GPU machine (see ../shared/device/README.md): build for Hopper, run the GPU tests and the
# CPU tests, then generate with the stories model on the GPU. Logs go to $OUT.
# Usage (device tool, carry [".carry"]): bash tools/device_check.sh [extra ctest -R regex]
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# Headers the GPU machine lacks, from the Debian .debs staged by prep-carry.sh.
for f in .carry/debs/libpcre2-dev_*.deb; do dpkg -x "$f" /; done
for f in .carry/debs/libcpp-httplib*.deb; do dpkg -x "$f" /opt/deps; done
export CMAKE_PREFIX_PATH=/opt/deps/usr LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu
export FDPP_SHARED_DIR=$PWD/.carry
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a >"$OUT/cmake.log" 2>&1 ||
  { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build build -j16 >"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head -40; exit 1; }
echo "== GPU tests"
./build/tests/fdpp_gpu_tests 2>&1 | tee "$OUT/gpu_tests.log" | grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|error|Expected|Which|actual|  [a-z_.]+ *$|tests ran" | head -60
echo "== CPU tests"
OMP_NUM_THREADS=1 ctest --test-dir build -L cpu -j16 --output-on-failure >"$OUT/ctest_cpu.log" 2>&1
tail -5 "$OUT/ctest_cpu.log"
echo "== generate on the GPU"
./build/fdpp generate -m .carry/models/stories260K-hf -p "Once upon a time" -n 60 --temp 0 --no-progress 2>&1 | tee "$OUT/generate.log"
echo "== calibrate, then generate with the calibrated softmax range (bf16 activations)"
mkdir -p /tmp/stories && cp .carry/models/stories260K-hf/* /tmp/stories/
./build/fdpp calibrate -m /tmp/stories -n 16 2>/dev/null | tail -7
./build/fdpp generate -m /tmp/stories -p "Once upon a time" -n 60 --temp 0 --dtype bf16 --no-progress 2>&1 | tail -3
