#include "core/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fdpp {

Histogram::Histogram()
    : bins_(static_cast<size_t>(2 * kLimit * kBinsPerUnit), 0),
      min_(std::numeric_limits<float>::infinity()),
      max_(-std::numeric_limits<float>::infinity()) {}

int64_t Histogram::bin_of(float v) const {
  return static_cast<int64_t>(std::floor((v + kLimit) * kBinsPerUnit));
}

float Histogram::bin_upper(int64_t b) const { return static_cast<float>(b + 1) / kBinsPerUnit - kLimit; }

void Histogram::add(float v) {
  if (std::isnan(v)) return;
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  const int64_t b = bin_of(v);
  if (b < 0) ++below_;
  else if (b >= static_cast<int64_t>(bins_.size())) ++above_;
  else ++bins_[static_cast<size_t>(b)];
}

void Histogram::merge(const Histogram& o) {
  for (size_t i = 0; i < bins_.size(); ++i) bins_[i] += o.bins_[i];
  below_ += o.below_;
  above_ += o.above_;
  count_ += o.count_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

float Histogram::quantile(double q) const {
  if (count_ == 0) return 0.0f;
  const auto target = static_cast<int64_t>(std::ceil(q * static_cast<double>(count_)));
  int64_t seen = below_;
  if (seen >= target) return min_;
  for (size_t b = 0; b < bins_.size(); ++b) {
    seen += bins_[b];
    if (seen >= target) return std::min(bin_upper(static_cast<int64_t>(b)), max_);
  }
  return max_;
}

double Histogram::fraction_within(float lo, float hi) const {
  if (count_ == 0) return 1.0;
  // Whole bins from lo's to hi's: exact when lo and hi lie on bin edges, as calibrated ranges do.
  int64_t inside = 0;
  const int64_t first = std::max<int64_t>(0, bin_of(lo));
  const int64_t last = std::min<int64_t>(static_cast<int64_t>(bins_.size()), bin_of(hi));
  for (int64_t b = first; b < last; ++b) inside += bins_[static_cast<size_t>(b)];
  // Values off the grid are known only by the extremes: counted when the range reaches past them.
  if (lo <= min_) inside += below_;
  if (hi >= max_) inside += above_;
  return static_cast<double>(inside) / static_cast<double>(count_);
}

}  // namespace fdpp
