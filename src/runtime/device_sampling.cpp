#include "runtime/device_sampling.h"

#include <fmt/format.h>

#include <algorithm>

#include "fdpp/status.h"
#include "runtime/sampler.h"

namespace fdpp {

std::string device_sampling_unsupported_reason(const SamplingParams& params) {
  try {
    validate(params);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

cuda::DeviceSamplingRow device_sampling_row(const SamplingParams& params, uint64_t seed,
                                            uint64_t step) {
  cuda::DeviceSamplingRow row;
  row.temperature = params.temperature;
  row.top_k = params.top_k;
  row.top_p = params.top_p;
  row.min_p = params.min_p;
  row.repetition_penalty = params.repetition_penalty;
  row.seed = seed;
  row.step = step;
  return row;
}

void DistinctTokens::add(int32_t token) {
  if (token < 0) throw Error(ErrorCode::kOutOfRange, fmt::format("token id {} is negative", token));
  const auto i = static_cast<size_t>(token);
  if (i >= seen_.size()) seen_.resize(std::max(i + 1, 2 * seen_.size()), false);
  if (seen_[i]) return;
  seen_[i] = true;
  ids_.push_back(token);
}

}  // namespace fdpp
