#include "backend/cuda/host_staging.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_check.h"

namespace fdpp::cuda {
namespace {
constexpr size_t kAlign = 16;         // each copy's source starts on a 16-byte boundary
constexpr size_t kMinCapacity = 64 << 10;
}  // namespace

HostStaging::~HostStaging() {
  if (pending_) cudaEventSynchronize(copied_);  // the queued copies still read the arena
  if (copied_ != nullptr) cudaEventDestroy(copied_);
  if (arena_ != nullptr) cudaFreeHost(arena_);
}

void HostStaging::wait_for_copies() {
  if (pending_) check(cudaEventSynchronize(copied_), "host staging");
  pending_ = false;
}

void HostStaging::begin() {
  wait_for_copies();
  used_ = 0;
}

void HostStaging::copy_to_device(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  const size_t at = (used_ + kAlign - 1) / kAlign * kAlign;
  if (at + bytes > capacity_) {
    // Grow: the copies already queued read the old arena, so they land first; this step's
    // later copies start the new one.
    const size_t capacity = std::max({kMinCapacity, 2 * capacity_, bytes});
    wait_for_copies();
    if (arena_ != nullptr) cudaFreeHost(arena_);
    arena_ = nullptr;
    capacity_ = used_ = 0;
    void* p = nullptr;
    check(cudaMallocHost(&p, capacity), "host staging (page-locked)");
    arena_ = static_cast<unsigned char*>(p);
    capacity_ = capacity;
    if (copied_ == nullptr) check(cudaEventCreateWithFlags(&copied_, cudaEventDisableTiming), "host staging event");
    return copy_to_device(dst, src, bytes, stream);
  }
  std::memcpy(arena_ + at, src, bytes);
  check(cudaMemcpyAsync(dst, arena_ + at, bytes, cudaMemcpyHostToDevice, stream), "host staging copy");
  check(cudaEventRecord(copied_, stream), "host staging event");
  pending_ = true;
  used_ = at + bytes;
}

}  // namespace fdpp::cuda
