// tests/support/random_fill.h: the GPU tests' parallel input draws are reproducible whatever the
// thread count, fresh from one fill to the next, and distributed as asked.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "support/random_fill.h"

namespace fdpp::test {
namespace {

std::vector<float> fill_with_threads(int threads, size_t n, uint32_t seed) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  fill_normal_chunked(v, rng, 2.0f, 0.5f);
  omp_set_num_threads(before);
  return v;
}

TEST(RandomFill, TheSameValuesForAnyThreadCount) {
  const size_t n = 5 * kFillChunk + 123;  // a ragged last chunk
  const std::vector<float> one = fill_with_threads(1, n, 7);
  EXPECT_EQ(fill_with_threads(2, n, 7), one);
  EXPECT_EQ(fill_with_threads(3, n, 7), one);
}

TEST(RandomFill, FreshDrawsFromOneFillToTheNextAndAcrossChunks) {
  std::mt19937 rng(11);
  std::vector<float> a(3 * kFillChunk), b(a.size());
  fill_normal_chunked(a, rng, 1.0f);
  fill_normal_chunked(b, rng, 1.0f);  // the rng moved on: new values
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  EXPECT_LT(same, a.size() / 1000);
  // Chunks have their own generators: chunk 1 does not repeat chunk 0.
  size_t repeats = 0;
  for (size_t i = 0; i < kFillChunk; ++i) repeats += a[i] == a[kFillChunk + i];
  EXPECT_LT(repeats, kFillChunk / 1000);
}

TEST(RandomFill, MeanAndSpreadAreAsAskedAndRoundingIsApplied) {
  std::mt19937 rng(3);
  std::vector<float> v(4 * kFillChunk);
  fill_normal_chunked(v, rng, 2.0f, 0.5f);
  double sum = 0, sum_sq = 0;
  for (float x : v) {
    sum += x;
    sum_sq += double{x} * x;
  }
  const double mean = sum / static_cast<double>(v.size());
  const double stddev = std::sqrt(sum_sq / static_cast<double>(v.size()) - mean * mean);
  EXPECT_NEAR(mean, 0.5, 0.02);  // 6 standard errors of the mean at n = 262144
  EXPECT_NEAR(stddev, 2.0, 0.02);

  std::vector<float> rounded(kFillChunk + 5);
  fill_normal_chunked(rounded, rng, 1.0f, 0.0f, [](float x) { return std::round(x * 4.0f) / 4.0f; });
  for (float x : rounded) ASSERT_EQ(x, std::round(x * 4.0f) / 4.0f);
}

}  // namespace
}  // namespace fdpp::test
