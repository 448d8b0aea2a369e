#!/usr/bin/env bash
# On the GPU machine: one command timed on two builds in one call, so that the figures compare.
#   ./build       this tree
#   ./build-base  a copy of this tree with the files under .carry/ab/ laid over it (staged here
#                 with tools/stage_ab_baseline.sh REF PATH...)
# COMMAND runs twice through bash, with $BUILD set to each build directory; its output comes under
# a header naming the build. Targets are built with the device README's configuration.
# Usage: bash tools/device_ab.sh TARGET... -- COMMAND
#   e.g. bash tools/device_ab.sh bench_attention -- '$BUILD/bench_attention'
set -euo pipefail
targets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do targets+=("$1"); shift; done
[ $# -ge 2 ] && [ ${#targets[@]} -gt 0 ] || { echo "usage: $0 TARGET... -- COMMAND" >&2; exit 2; }
shift
command=$*
[ -d .carry/ab ] || { echo "$0: no .carry/ab: run tools/stage_ab_baseline.sh first" >&2; exit 2; }

configure_and_build() {  # source dir, build dir
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFDPP_SERVER=OFF >/dev/null
  cmake --build "$2" -j"$(nproc)" --target "${targets[@]}" 2>&1 | grep -E "error|FAILED" && return 1
  return 0
}

root=$PWD
base_src=/tmp/fdpp-ab-base
rm -rf "$base_src" && mkdir -p "$base_src"
tar --exclude='./build*' --exclude=./.carry --exclude=./.git -cf - . | tar -xf - -C "$base_src"
(cd .carry/ab && find . -type f ! -name .ref -print0 | xargs -0 -I{} cp {} "$base_src/{}")
echo "# baseline: $(find .carry/ab -type f ! -name .ref | wc -l) files at $(cat .carry/ab/.ref 2>/dev/null || echo '?')"
configure_and_build "$root" "$root/build"
configure_and_build "$base_src" "$root/build-base"
for build in build build-base; do
  echo "## $build"
  BUILD="$root/$build" bash -c "$command"
done
