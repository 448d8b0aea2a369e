#include "backend/cuda/cuda_device.h"

#include <cuda_runtime.h>

#include <array>
#include <atomic>

#include "backend/cuda/env_switch.h"

namespace fdpp::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return {};
  }
  return prop.name;
}

namespace {
// The device's compute capability major version, 0 where it cannot be asked (the error cleared).
int compute_capability_major(int device) {
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return major;
}

// -1: FDPP_PDL decides (default on); 0 / 1: set_programmatic_launch.
std::atomic<int> programmatic_launch_switch{-1};
}  // namespace

void set_programmatic_launch(bool enabled) { programmatic_launch_switch.store(enabled ? 1 : 0); }

bool programmatic_launch_enabled() {
  static const bool env_allows = env_switch("FDPP_PDL") != 0;
  const int forced = programmatic_launch_switch.load(std::memory_order_relaxed);
  if (forced == 0 || (forced < 0 && !env_allows)) return false;
  // Per device: 0 unknown, 1 off, 2 on.
  static std::array<std::atomic<int>, 64> state{};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= static_cast<int>(state.size())) {
    (void)cudaGetLastError();
    return false;
  }
  int s = state[device].load(std::memory_order_relaxed);
  if (s == 0) {
    s = compute_capability_major(device) >= 9 ? 2 : 1;
    state[device].store(s, std::memory_order_relaxed);
  }
  return s == 2;
}

bool bulk_copy_supported() {
  static const bool supported = [] {
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return compute_capability_major(device) >= 9;
  }();
  return supported;
}

}  // namespace fdpp::cuda
