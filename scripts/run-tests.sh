#!/usr/bin/env bash
# Builds fdpp (CUDA backend too when nvcc is found) and runs every test. GPU tests (label gpu)
# skip cleanly without a GPU. Expects ../shared beside the checkout for model-level tests.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
cmake --build "$build_dir" -j "$jobs"
# One OpenMP thread per test: ctest already runs tests in parallel on every core.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" ${CTEST_ARGS:-}
