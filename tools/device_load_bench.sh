#!/usr/bin/env bash
# On the GPU machine: build fdpp with the server, write a random-weight Llama-2-7B-shape checkpoint,
# serve it, and run tools/load_bench.py at 1/8/32/64 concurrent streams. Logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
for f in .carry/debs/libpcre2-dev_*.deb; do dpkg -x "$f" /; done
for f in .carry/debs/libcpp-httplib*.deb; do dpkg -x "$f" /opt/deps; done
export CMAKE_PREFIX_PATH=/opt/deps/usr LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a >"$OUT/cmake.log" 2>&1
cmake --build build -j16 --target fdpp >"$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head; exit 1; }
MODEL=/tmp/llama2-7b-random
PYTHONUNBUFFERED=1 python3 tools/make_random_llama.py llama2-7b $MODEL --tokenizer .carry/testdata/tokenizer-llama2 2>&1 | tail -1
./build/fdpp serve -m $MODEL --port 8080 --max-batch 64 --kv-cache-tokens 16384 --max-step-tokens 1024 \
  --no-progress >"$OUT/serve.log" 2>&1 &
for i in $(seq 120); do curl -sf http://127.0.0.1:8080/health >/dev/null && break; sleep 1; done
head -2 "$OUT/serve.log"
PYTHONUNBUFFERED=1 python3 tools/load_bench.py http://127.0.0.1:8080 llama2-7b-random --concurrency 1 8 32 64 \
  --requests-per-client 1 --prompt-words 64 --max-tokens 64 2>&1 | tee "$OUT/load_bench.md"
curl -s http://127.0.0.1:8080/metrics | grep -E "^fdpp_(softmax|kv)" | head -5
kill %1 2>/dev/null
