// Per-step host inputs (step metadata, sampling rows, penalty ids) copied to the device from
// page-locked arenas. From pageable memory a copy may make the host wait for the stream (the
// driver stages it), which left the GPU idle between a step's metadata copy and its graph, and
// between the graph and the sampler; from page-locked memory the copies queue like kernels.
// Two arenas alternate, one per step: a step's inputs may be written while the step before it is
// still queued (its sampling rows are copied only after its graph), and an arena is reused once
// the copies of two steps ago have landed (an event), which they have long since.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace fdpp::cuda {

class HostStaging {
 public:
  HostStaging() = default;
  HostStaging(const HostStaging&) = delete;
  HostStaging& operator=(const HostStaging&) = delete;
  ~HostStaging();

  // A new step: switches to the other arena, waits for the copies queued from it (the step before
  // the previous one; normally long done), and reuses it from its start.
  void begin();
  // Queues a copy of `bytes` at `src` to `dst` on `stream`; `src` may be reused at once. Not
  // inside a graph capture (the copy would be recorded with the arena's address).
  void copy_to_device(void* dst, const void* src, size_t bytes, cudaStream_t stream);

 private:
  struct Arena {
    unsigned char* data = nullptr;  // page-locked, capacity bytes
    size_t capacity = 0, used = 0;
    cudaEvent_t copied = nullptr;  // recorded after the latest copy from this arena
    bool pending = false;          // copied was recorded since the last wait
  };
  static void wait_for_copies(Arena& a);

  Arena arenas_[2];
  int current_ = 0;
};

}  // namespace fdpp::cuda
