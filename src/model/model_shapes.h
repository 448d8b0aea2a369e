// Named model shapes for benchmarks without checkpoint files: the configs of well-known models.
#pragma once

#include <string>
#include <vector>

#include "model/config.h"

namespace fdpp {

// "llama2-7b", "llama3-8b", "qwen2-7b", "mistral-7b", or "tiny" (2 layers, for tests).
// Throws fdpp::Error (kInvalidArgument) listing the known names.
ModelConfig named_model_shape(const std::string& name);
std::vector<std::string> named_model_shapes();

}  // namespace fdpp
