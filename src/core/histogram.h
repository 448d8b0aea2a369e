// Histogram of float values on a fixed grid: quantiles and coverage of a range, mergeable across
// threads. Used to record softmax inputs for calibration.
#pragma once

#include <cstdint>
#include <vector>

namespace fdpp {

class Histogram {
 public:
  // Bins of width 1/kBinsPerUnit over [-kLimit, kLimit); values outside count as underflow/overflow.
  static constexpr float kLimit = 512.0f;
  static constexpr int kBinsPerUnit = 64;

  Histogram();
  void add(float v);
  void merge(const Histogram& other);

  int64_t count() const { return count_; }
  float min() const { return min_; }
  float max() const { return max_; }
  // Smallest value v with at least fraction q of the samples <= v (to bin resolution); q in [0, 1].
  float quantile(double q) const;
  // Fraction of samples inside [lo, hi] (to bin resolution; exact for values on bin edges).
  double fraction_within(float lo, float hi) const;

 private:
  int64_t bin_of(float v) const;
  float bin_upper(int64_t b) const;

  std::vector<int64_t> bins_;
  int64_t below_ = 0, above_ = 0, count_ = 0;
  float min_, max_;
};

}  // namespace fdpp
