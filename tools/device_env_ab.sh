#!/usr/bin/env bash
# On the GPU machine: one command timed under several values of one environment switch (the A/B
# switches README.md lists, e.g. FDPP_ATTENTION_BULK=0|1), in one call and one binary, so that
# the figures compare. Rounds alternate the values (a, b, a, b, ...) so that a drift of the GPU's
# state shows as spread, not as a difference. Build first (tools/device_build.sh); each run's
# output is prefixed by a "== VAR=value, round r" line.
# Usage: bash tools/device_env_ab.sh [--rounds N] VAR VALUE[,VALUE...] -- COMMAND
#   e.g. bash tools/device_env_ab.sh --rounds 2 FDPP_ATTENTION_BULK 0,1 -- \
#          './build/bench_attention --decode-only | grep "^| [0-9]"'
set -uo pipefail
rounds=1
if [ "${1:-}" = "--rounds" ]; then rounds=$2; shift 2; fi
[ $# -ge 4 ] && [ "$3" = "--" ] || { echo "usage: $0 [--rounds N] VAR VALUE[,VALUE...] -- COMMAND" >&2; exit 2; }
var=$1 values=$2
shift 3
command=$*
[[ "$var" =~ ^[A-Z_][A-Z0-9_]*$ ]] || { echo "$0: '$var' is not an environment variable name" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --rounds needs a positive count, not '$rounds'" >&2; exit 2; }
IFS=, read -r -a choices <<<"$values"
status=0
for ((r = 1; r <= rounds; ++r)); do
  for value in "${choices[@]}"; do
    echo "== $var=$value, round $r"
    env "$var=$value" bash -c "$command" || status=$?
  done
done
exit "$status"
