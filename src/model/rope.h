// RoPE frequencies for a model: inv_freq[i] = theta^(-2i/hd), with the config's rope_scaling
// (linear: divided by factor; llama3: long wavelengths divided by factor, a smooth blend between).
#pragma once

#include <vector>

#include "model/config.h"

namespace fdpp {

// [hd/2] fp32 inverse frequencies, as Hugging Face computes them for this config.
std::vector<float> rope_inv_freq(const ModelConfig& config);

}  // namespace fdpp
