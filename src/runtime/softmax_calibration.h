// Calibration of FlashDecoding++'s unified max value: from histograms of the scaled attention
// scores a model produces, choose phi and the range [lo, hi] each layer's asynchronized softmax
// uses, and read/write them as DIR/softmax_range.json (what `fdpp calibrate` writes and the
// runtime loads).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/histogram.h"

namespace fdpp {

struct LayerSoftmaxStats {
  SoftmaxRangeSetting range;   // what the runtime uses
  float observed_low = 0;      // quantile 0.005% of the scores seen
  float observed_high = 0;     // quantile 99.995%: [observed_low, observed_high] holds >= 99.99%
  float min = 0, max = 0;      // extremes seen
  int64_t samples = 0;
  double coverage = 1.0;       // fraction of the scores seen inside range [lo, hi]
};

struct SoftmaxCalibration {
  LayerSoftmaxStats model;                 // all layers pooled
  std::vector<LayerSoftmaxStats> layers;   // [L]
};

// The numerically safe half-width of the window around phi (DESIGN.md section 1a): e^(s - phi)
// stays inside fp32 (and bf16) for |s - phi| <= 60 at contexts up to 32K.
inline constexpr float kSoftmaxHalfWindow = 60.0f;
inline constexpr const char* kSoftmaxRangeFile = "softmax_range.json";

// phi: the middle of the observed 99.99% interval, so [phi - 60, phi + 60] covers it whenever
// it is narrower than 120 (Llama-2-7B: [-16.8, 6.5]), raised if needed until hi clears the largest
// score seen. A wider spread (OPT: [-497, 364]) leaves coverage below 99.99%, which the stats
// report: those rows take the online-softmax fallback.
LayerSoftmaxStats calibrate_layer(const Histogram& scores);
SoftmaxCalibration calibrate(const std::vector<Histogram>& per_layer);

void write_softmax_calibration(const std::filesystem::path& path, const SoftmaxCalibration& calibration);
// Throws fdpp::Error naming the file and field on a missing, malformed or inconsistent file.
SoftmaxCalibration read_softmax_calibration(const std::filesystem::path& path, int64_t expected_layers);
// One range per layer: the layer's own, or the pooled model range where the file has none.
std::vector<SoftmaxRangeSetting> per_layer_ranges(const SoftmaxCalibration& calibration, int64_t num_layers);

}  // namespace fdpp
