#include "model/rope.h"

#include <cmath>
#include <numbers>

namespace fdpp {

std::vector<float> rope_inv_freq(const ModelConfig& config) {
  const int64_t hd = config.head_dim;
  std::vector<float> inv_freq(static_cast<size_t>(hd / 2));
  const RopeScaling& rs = config.rope_scaling;
  for (int64_t i = 0; i < hd / 2; ++i) {
    // HF: 1 / theta ** (arange(0, hd, 2) / hd), in fp32
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(hd);
    float f = 1.0f / std::pow(config.rope_theta, exponent);
    if (rs.type == RopeScalingType::kLinear) {
      f /= rs.factor;
    } else if (rs.type == RopeScalingType::kLlama3) {
      const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
      const double low_freq_wavelen = old_ctx / rs.low_freq_factor;
      const double high_freq_wavelen = old_ctx / rs.high_freq_factor;
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_freq_wavelen) {
        f = static_cast<float>(f / rs.factor);  // long wavelengths: fully scaled
      } else if (wavelen >= high_freq_wavelen) {  // medium: blend scaled and unscaled
        const double smooth =
            (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f = static_cast<float>((1.0 - smooth) * f / rs.factor + smooth * f);
      }
    }
    inv_freq[static_cast<size_t>(i)] = f;
  }
  return inv_freq;
}

}  // namespace fdpp
