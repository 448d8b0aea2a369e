// Per-step host inputs (step metadata, sampling rows, penalty ids) copied to the device from one
// page-locked arena. From pageable memory a copy may make the host wait for the stream (the
// driver stages it), which left the GPU idle between a step's metadata copy and its graph, and
// between the graph and the sampler; from page-locked memory the copies queue like kernels.
// The arena is reused each step once the previous step's copies have landed (an event), which
// they have whenever the step ended by handing tokens or logits to the host.
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

  // A new step: waits for the copies queued since the last begin (normally long done), then
  // reuses the arena from its start.
  void begin();
  // Queues a copy of `bytes` at `src` to `dst` on `stream`; `src` may be reused at once. Not
  // inside a graph capture (the copy would be recorded with the arena's address).
  void copy_to_device(void* dst, const void* src, size_t bytes, cudaStream_t stream);

 private:
  void wait_for_copies();

  unsigned char* arena_ = nullptr;  // page-locked, capacity_ bytes
  size_t capacity_ = 0, used_ = 0;
  cudaEvent_t copied_ = nullptr;  // recorded after the latest copy
  bool pending_ = false;          // copied_ was recorded since the last wait
};

}  // namespace fdpp::cuda
