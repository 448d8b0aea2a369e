// The GPU sampler's tokens on their way to the host. Each queued sample's tokens are copied into
// a page-locked slot of their own (a copy to pageable memory would make the host wait for it) and
// waited for by an event, oldest first. Two slots: the host may queue step n + 1 before taking
// step n's tokens.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>

namespace fdpp::cuda {

class SampledTokenQueue {
 public:
  static constexpr int kSlots = 2;

  SampledTokenQueue() = default;
  SampledTokenQueue(const SampledTokenQueue&) = delete;
  SampledTokenQueue& operator=(const SampledTokenQueue&) = delete;
  ~SampledTokenQueue();

  // Queues the copy of rows tokens [rows] int32 at `device` to the host on `stream`, after the
  // work queued there before. Throws kInternal when kSlots samples are already queued.
  void push(const int32_t* device, int64_t rows, cudaStream_t stream);
  // Waits for the oldest queued copy and hands its tokens out; tokens.size() must be its row
  // count. Throws kInternal when nothing is queued or the sizes differ.
  void pop(std::span<int32_t> tokens);
  int queued() const { return count_; }

 private:
  struct Slot {
    int32_t* host = nullptr;  // page-locked, capacity tokens
    int64_t capacity = 0, rows = 0;
    cudaEvent_t copied = nullptr;
  };
  Slot slots_[kSlots];
  int head_ = 0, count_ = 0;  // the oldest queued slot, and how many are queued
};

}  // namespace fdpp::cuda
