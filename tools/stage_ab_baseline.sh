#!/usr/bin/env bash
# Here, before a device call: stage the baseline of an A/B comparison. Writes the files PATH... as
# they are at git REF under .carry/ab/ (carried to the GPU machine with .carry), where
# tools/device_ab.sh lays them over a copy of the tree to build the baseline.
# Usage: bash tools/stage_ab_baseline.sh REF PATH...
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 REF PATH..." >&2; exit 2; }
ref=$1; shift
git rev-parse --verify --quiet "$ref^{commit}" >/dev/null || { echo "$0: not a commit: $ref" >&2; exit 2; }
rm -rf .carry/ab && mkdir -p .carry/ab
for path in "$@"; do
  mkdir -p ".carry/ab/$(dirname "$path")"
  git show "$ref:$path" >".carry/ab/$path" || { echo "$0: $path is not in $ref" >&2; exit 2; }
  echo "baseline: $path at $ref"
done
git rev-parse "$ref" >.carry/ab/.ref
