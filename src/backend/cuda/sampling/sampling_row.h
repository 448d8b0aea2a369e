// The per-row parameters of the GPU sampler (sampling.cuh), usable from host-only code (no CUDA
// headers here): the runtime fills them without a CUDA build (runtime/device_sampling.h).
#pragma once

#include <cstdint>
#include <span>

namespace fdpp::cuda {

struct DeviceSamplingRow {
  float temperature = 1.0f;  // <= 0 (or NaN): greedy argmax
  int32_t top_k = 0;         // <= 0 or >= vocab: off
  float top_p = 1.0f;        // >= 1 (or NaN): off; <= 0 keeps only the most likely token
  uint64_t seed = 0;         // the request's seed (the runtime draws one when none was given)
  uint64_t step = 0;         // index of the token being drawn in its sequence: a fresh number per step
  float min_p = 0.0f;        // <= 0: off; else drop tokens under min_p times the most likely one's probability
  float repetition_penalty = 1.0f;  // 1: off; else applied to the row's previous tokens (PenaltyTokens)
};

// The previous tokens each row's repetition penalty applies to: row r's ids are
// ids[offsets[r], offsets[r + 1]), distinct and inside the vocabulary. Empty spans: no row has any.
struct PenaltyTokens {
  std::span<const int32_t> ids;
  std::span<const int64_t> offsets;  // [R + 1] when not empty
};

}  // namespace fdpp::cuda
