#include "backend/cuda/sampled_tokens.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "fdpp/status.h"

namespace fdpp::cuda {

SampledTokenQueue::~SampledTokenQueue() {
  for (Slot& s : slots_) {
    if (s.copied != nullptr) {
      cudaEventSynchronize(s.copied);  // a queued copy still writes the slot
      cudaEventDestroy(s.copied);
    }
    if (s.host != nullptr) cudaFreeHost(s.host);
  }
}

void SampledTokenQueue::push(const int32_t* device, int64_t rows, cudaStream_t stream) {
  if (count_ == kSlots)
    throw Error(ErrorCode::kInternal,
                fmt::format("sampled tokens: {} samples are already queued; take one before queueing another", kSlots));
  Slot& s = slots_[(head_ + count_) % kSlots];
  if (rows > s.capacity) {  // the slot is free: no copy writes it
    if (s.host != nullptr) cudaFreeHost(s.host);
    s.host = nullptr;
    s.capacity = 0;
    const int64_t capacity = std::max<int64_t>(rows, 64);
    void* p = nullptr;
    check(cudaMallocHost(&p, static_cast<size_t>(capacity) * sizeof(int32_t)), "sampled tokens (page-locked)");
    s.host = static_cast<int32_t*>(p);
    s.capacity = capacity;
  }
  if (s.copied == nullptr) check(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming), "sampled tokens event");
  check(cudaMemcpyAsync(s.host, device, static_cast<size_t>(rows) * sizeof(int32_t), cudaMemcpyDeviceToHost, stream),
        "sampled tokens");
  check(cudaEventRecord(s.copied, stream), "sampled tokens event");
  s.rows = rows;
  ++count_;
}

void SampledTokenQueue::pop(std::span<int32_t> tokens) {
  if (count_ == 0) throw Error(ErrorCode::kInternal, "sampled tokens: no sample is queued");
  Slot& s = slots_[head_];
  if (static_cast<int64_t>(tokens.size()) != s.rows)
    throw Error(ErrorCode::kInternal,
                fmt::format("sampled tokens: the oldest sample has {} rows, {} were asked for", s.rows, tokens.size()));
  check(cudaEventSynchronize(s.copied), "forward step");
  std::copy(s.host, s.host + s.rows, tokens.begin());
  head_ = (head_ + 1) % kSlots;
  --count_;
}

}  // namespace fdpp::cuda
