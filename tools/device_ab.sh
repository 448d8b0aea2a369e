#!/usr/bin/env bash
# On the GPU machine: one command timed on several builds in one call, so that the figures compare.
#   ./build         this tree
#   ./build-NAME    a copy of this tree with .carry/ab/NAME/ laid over it, for each variant staged
#                   here with tools/stage_ab.sh (files as they are at a baseline or on a branch)
# COMMAND runs through bash once per build and round, with $BUILD set to the build directory and
# $VARIANT to its name (main for ./build); rounds alternate the builds (main, a, b, main, a, b, ...)
# so that a drift of the GPU's state shows as spread, not as a difference. Targets are built with
# the device README's configuration; a variant that does not build is reported and skipped.
# Usage: bash tools/device_ab.sh [--rounds N] TARGET... -- COMMAND
#   e.g. bash tools/device_ab.sh --rounds 2 bench_attention -- '$BUILD/bench_attention'
set -euo pipefail
rounds=1
if [ "${1:-}" = "--rounds" ]; then rounds=$2; shift 2; fi
targets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do targets+=("$1"); shift; done
[ $# -ge 2 ] && [ ${#targets[@]} -gt 0 ] || { echo "usage: $0 [--rounds N] TARGET... -- COMMAND" >&2; exit 2; }
shift
command=$*
root=$PWD
variants=()
for dir in .carry/ab/*/; do [ -f "$dir/.ref" ] && variants+=("$(basename "$dir")"); done
[ ${#variants[@]} -gt 0 ] || { echo "$0: nothing staged under .carry/ab: run tools/stage_ab.sh first" >&2; exit 2; }

configure_and_build() {  # source dir, build dir
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFDPP_SERVER=OFF >/dev/null &&
    cmake --build "$2" -j"$(nproc)" --target "${targets[@]}" >"$2/build-output.log" 2>&1 && return 0
  grep -E "error|FAILED" "$2/build-output.log" | head -20
  return 1
}

builds=(main)
configure_and_build "$root" "$root/build" || { echo "$0: this tree does not build" >&2; exit 1; }
for name in "${variants[@]}"; do
  src=/tmp/fdpp-ab-$name
  rm -rf "$src" && mkdir -p "$src"
  tar --exclude='./build*' --exclude=./.carry --exclude=./.git -cf - . | tar -xf - -C "$src"
  (cd ".carry/ab/$name" && find . -type f ! -name .ref ! -name .deleted -print0 | xargs -0 -r -I{} cp {} "$src/{}")
  if [ -s ".carry/ab/$name/.deleted" ]; then
    while read -r path; do rm -f "$src/$path"; done <".carry/ab/$name/.deleted"
  fi
  echo "# $name: $(find ".carry/ab/$name" -type f ! -name '.*' | wc -l) files at $(cat ".carry/ab/$name/.ref")"
  if configure_and_build "$src" "$root/build-$name"; then builds+=("$name"); else echo "# $name: build failed, skipped"; fi
done
for ((round = 1; round <= rounds; ++round)); do
  for name in "${builds[@]}"; do
    build=build; [ "$name" = main ] || build=build-$name
    echo "## $name (round $round)"
    VARIANT=$name BUILD="$root/$build" bash -c "$command" || echo "# $name: the command failed (rc $?)"
  done
done
