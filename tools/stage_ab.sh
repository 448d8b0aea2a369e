#!/usr/bin/env bash
# Here, before a device call: stage one variant of an A/B comparison under .carry/ab/NAME/ (carried
# to the GPU machine with .carry). tools/device_ab.sh lays each staged variant over a copy of the
# tree and builds it beside ./build, so a change, its baseline and other candidates are built and
# timed in one call.
#   REF      a commit or branch: the variant is this tree with PATH... as they are at REF. With no
#            PATH: for an ancestor of HEAD (a baseline), every path that changed since REF; for a
#            branch, the paths the branch changed since it forked (refused where HEAD changed
#            them too: rebase first). Paths REF lacks are deleted in the variant.
#   --as N   the variant's name (default: base); its build directory is build-N. Staging a name
#            again replaces it; --clear removes every staged variant first.
# Usage: bash tools/stage_ab.sh [--clear] [--as NAME] REF [PATH...]
#   e.g. bash tools/stage_ab.sh --clear 25c3407 src/backend/cuda/attention/attention.cu
#        bash tools/stage_ab.sh --as wave wip/attention-wave-plan-fused-merge
set -euo pipefail
name=base
while [ $# -gt 0 ]; do
  case "$1" in
    --clear) rm -rf .carry/ab; shift ;;
    --as) [ $# -ge 2 ] || { echo "$0: --as needs a name" >&2; exit 2; }; name=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--clear] [--as NAME] REF [PATH...]" >&2; exit 2; }
[[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "$0: a variant name is letters, digits, - and _: $name" >&2; exit 2; }
ref=$1; shift
git rev-parse --verify --quiet "$ref^{commit}" >/dev/null || { echo "$0: not a commit: $ref" >&2; exit 2; }
dir=.carry/ab/$name
rm -rf "$dir" && mkdir -p "$dir"
paths=("$@")
if [ ${#paths[@]} -eq 0 ]; then
  if git merge-base --is-ancestor "$ref" HEAD; then  # a baseline: every path that changed since
    mapfile -t paths < <(git diff --name-only "$ref" HEAD)
  else  # a branch: its own changes only, so the variant keeps what HEAD added since it forked
    base=$(git merge-base HEAD "$ref")
    mapfile -t paths < <(git diff --name-only "$base" "$ref")
    mapfile -t both < <(comm -12 <(printf '%s\n' "${paths[@]}" | sort) <(git diff --name-only "$base" HEAD | sort))
    if [ ${#both[@]} -gt 0 ] && [ -n "${both[0]}" ]; then
      echo "$0: $ref and HEAD both changed ${both[*]} since they forked: rebase $ref first" >&2; exit 2
    fi
  fi
  [ ${#paths[@]} -gt 0 ] && [ -n "${paths[0]}" ] || { echo "$0: $ref changes nothing against HEAD" >&2; exit 2; }
fi
: >"$dir/.deleted"
for path in "${paths[@]}"; do
  if git cat-file -e "$ref:$path" 2>/dev/null; then
    mkdir -p "$dir/$(dirname "$path")"
    git show "$ref:$path" >"$dir/$path"
    echo "$name: $path at $ref"
  elif [ $# -eq 0 ]; then
    echo "$path" >>"$dir/.deleted"
    echo "$name: $path deleted (absent at $ref)"
  else
    echo "$0: $path is not in $ref" >&2; exit 2
  fi
done
git rev-parse "$ref" >"$dir/.ref"
