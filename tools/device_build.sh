# Sourced by the device scripts (tools/device_*_check.sh) on the GPU machine: the headers the
# machine lacks from the staged .debs, the shared data from .carry, the GPU's name, then
# `device_build TARGET...` configures ./build for Hopper (no server) and builds the targets,
# printing the first errors on failure.
for f in .carry/debs/libpcre2-dev_*.deb; do dpkg -x "$f" /; done
export FDPP_SHARED_DIR=$PWD/.carry
nvidia-smi --query-gpu=name --format=csv,noheader

device_build() {
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFDPP_SERVER=OFF >/dev/null &&
    cmake --build build -j"$(nproc)" --target "$@" >/tmp/device-build.log 2>&1 && return 0
  grep -E "error" /tmp/device-build.log | head -20
  return 1
}
