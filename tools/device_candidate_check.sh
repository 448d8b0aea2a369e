#!/usr/bin/env bash
# On the GPU machine, one call for a candidate tree (branches merged into one checkout here): the
# full GPU suite on it, then against every variant staged under .carry/ab (the baseline: `bash
# tools/stage_ab.sh --clear --as base main` here first), alternating, N rounds: the Llama-2-7B
# decode step at batch 1/8/16 and the decode attention table (bench_attention --decode-only, torch
# SDPA as its peer). Logs go to $OUT/candidate.log when $OUT is set. Carry [".carry"].
# Usage: bash tools/device_candidate_check.sh [--rounds N] [--no-peer]
set -uo pipefail
rounds=2 peer=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --no-peer) peer=0; shift ;;
    *) echo "usage: $0 [--rounds N] [--no-peer]" >&2; exit 2 ;;
  esac
done
exec > >(tee "${OUT:-/tmp}/candidate.log") 2>&1
source tools/device_build.sh
device_build fdpp fdpp_gpu_tests bench_attention || exit 1
echo "== GPU tests"
./build/tests/fdpp_gpu_tests 2>&1 | grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which|actual|tests ran" | head -40
peer_args=
if [ "$peer" = 1 ]; then
  # Twice: the first run warms torch up; the second's figures are the peer.
  python3 bench/attention_sdpa_peer.py /tmp/sdpa-warm.json >/dev/null 2>&1 &&
    python3 bench/attention_sdpa_peer.py /tmp/sdpa.json >/dev/null 2>&1 && peer_args="--peer /tmp/sdpa.json"
fi
echo "== decode steps (ms, prompt 128) and decode attention (µs), per variant"
bash tools/device_ab.sh --rounds "$rounds" fdpp bench_attention -- \
  '$BUILD/fdpp bench --shape llama2-7b --prefill 128 --batch 1,8,16 --context 128 --steps 32 2>&1 | grep -E "^\| decode";
   $BUILD/bench_attention --decode-only '"$peer_args"' 2>&1 | grep -E "^\| +(1|16|64) \|"'
