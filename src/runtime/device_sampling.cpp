#include "runtime/device_sampling.h"

#include <fmt/format.h>

#include "fdpp/status.h"
#include "runtime/sampler.h"

namespace fdpp {

std::string device_sampling_unsupported_reason(const SamplingParams& params) {
  try {
    validate(params);
  } catch (const Error& e) {
    return e.what();
  }
  if (params.repetition_penalty != 1.0f)
    return fmt::format("repetition_penalty={} needs the previous tokens (host sampler only)",
                       params.repetition_penalty);
  return {};
}

cuda::DeviceSamplingRow device_sampling_row(const SamplingParams& params, uint64_t seed,
                                            uint64_t step) {
  cuda::DeviceSamplingRow row;
  row.temperature = params.temperature;
  row.top_k = params.top_k;
  row.top_p = params.top_p;
  row.min_p = params.min_p;
  row.seed = seed;
  row.step = step;
  return row;
}

}  // namespace fdpp
