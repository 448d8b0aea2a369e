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
  for (Arena& a : arenas_) {
    if (a.pending) cudaEventSynchronize(a.copied);  // the queued copies still read the arena
    if (a.copied != nullptr) cudaEventDestroy(a.copied);
    if (a.data != nullptr) cudaFreeHost(a.data);
  }
}

void HostStaging::wait_for_copies(Arena& a) {
  if (a.pending) check(cudaEventSynchronize(a.copied), "host staging");
  a.pending = false;
}

void HostStaging::begin() {
  current_ ^= 1;
  Arena& a = arenas_[current_];
  wait_for_copies(a);
  a.used = 0;
}

void HostStaging::copy_to_device(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  Arena& a = arenas_[current_];
  const size_t at = (a.used + kAlign - 1) / kAlign * kAlign;
  if (at + bytes > a.capacity) {
    // Grow: the copies already queued read the old arena, so they land first; this step's
    // later copies start the new one.
    const size_t capacity = std::max({kMinCapacity, 2 * a.capacity, bytes});
    wait_for_copies(a);
    if (a.data != nullptr) cudaFreeHost(a.data);
    a.data = nullptr;
    a.capacity = a.used = 0;
    void* p = nullptr;
    check(cudaMallocHost(&p, capacity), "host staging (page-locked)");
    a.data = static_cast<unsigned char*>(p);
    a.capacity = capacity;
    if (a.copied == nullptr) check(cudaEventCreateWithFlags(&a.copied, cudaEventDisableTiming), "host staging event");
    return copy_to_device(dst, src, bytes, stream);
  }
  std::memcpy(a.data + at, src, bytes);
  check(cudaMemcpyAsync(dst, a.data + at, bytes, cudaMemcpyHostToDevice, stream), "host staging copy");
  check(cudaEventRecord(a.copied, stream), "host staging event");
  a.pending = true;
  a.used = at + bytes;
}

}  // namespace fdpp::cuda
