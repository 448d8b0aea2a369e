// Which requests the GPU sampler (backend/cuda/sampling/sampling.cuh) can serve, and their
// per-row parameters. Host-only C++: usable in builds without CUDA.
//
// The GPU sampler applies the repetition penalty, temperature, top-k, top-p and min-p with the
// host sampler's rules (runtime/sampler.h); the penalty needs each sequence's distinct previous
// tokens, which DistinctTokens keeps as they arrive. Its random numbers come from (seed, step), not from a per-sequence
// mt19937_64, so a seeded request reproduces itself on the GPU but not the host's tokens.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend/cuda/sampling/sampling_row.h"
#include "fdpp/sampling.h"

namespace fdpp {

// Empty when the GPU sampler serves `params`; otherwise why not, naming the parameter. Invalid
// parameters (see validate() in runtime/sampler.h) are refused too, so that the host path
// reports them.
std::string device_sampling_unsupported_reason(const SamplingParams& params);

inline bool device_sampling_supported(const SamplingParams& params) {
  return device_sampling_unsupported_reason(params).empty();
}

// The GPU row of a supported request. seed: params.seed when given, else one the runtime drew
// once for the request; step: the index of the token being drawn (tokens generated so far).
cuda::DeviceSamplingRow device_sampling_row(const SamplingParams& params, uint64_t seed,
                                            uint64_t step);

// The distinct ids of one sequence's tokens (prompt + generated), in first-seen order, kept as
// tokens arrive: the repetition penalty's set without a sort per step. Ids must be >= 0.
class DistinctTokens {
 public:
  void add(std::span<const int32_t> tokens) {
    for (int32_t t : tokens) add(t);
  }
  void add(int32_t token);
  std::span<const int32_t> ids() const { return ids_; }

 private:
  std::vector<int32_t> ids_;
  std::vector<bool> seen_;  // [largest id + 1]
};

}  // namespace fdpp
