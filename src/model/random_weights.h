// Random weights made directly on a backend (no checkpoint files): for benchmarks of any shape.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "model/weights.h"

namespace fdpp {

// Every tensor the config needs, in the backend's activation dtype, filled with values of std
// 0.02 around 0 (norm weights around 1), as transformers initialises models. `storage` owns the
// memory. The result is already on the backend: pass WeightPlacement::kOnBackend to LlamaModel.
LlamaWeights make_random_weights(const ModelConfig& config, Backend& backend, std::vector<DeviceTensor>& storage,
                                 uint64_t seed);

}  // namespace fdpp
