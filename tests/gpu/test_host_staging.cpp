// backend/cuda/host_staging.h: copies queued from the page-locked arena land intact, in order,
// when the source is overwritten at once, when a step's copies outgrow the arena (it grows), and
// when the arena is reused step after step.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/host_staging.h"
#include "gpu_test_util.h"

namespace fdpp {
namespace {

std::vector<int32_t> random_ints(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = static_cast<int32_t>(rng());
  return v;
}

TEST(GpuHostStaging, CopiesLandIntactAcrossGrowthAndSteps) {
  FDPP_REQUIRE_GPU();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cuda::HostStaging staging;
  // Sizes from a few bytes to past the arena's first 64 KB, unaligned on purpose.
  const std::vector<size_t> counts = {1, 3, 1000, 5, 20000, 7, 40000, 9};
  size_t total = 0;
  for (size_t n : counts) total += n;
  int32_t* dev = nullptr;
  ASSERT_EQ(cudaMalloc(&dev, total * sizeof(int32_t)), cudaSuccess);
  for (uint32_t step = 0; step < 3; ++step) {
    staging.begin();
    std::vector<int32_t> expected;
    std::vector<int32_t> src;  // reused for every copy: the arena must have taken its bytes
    size_t at = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      src = random_ints(counts[i], step * 100 + static_cast<uint32_t>(i));
      expected.insert(expected.end(), src.begin(), src.end());
      staging.copy_to_device(dev + at, src.data(), src.size() * sizeof(int32_t), stream);
      std::fill(src.begin(), src.end(), -1);
      at += counts[i];
    }
    std::vector<int32_t> got(total, 0);
    ASSERT_EQ(cudaMemcpyAsync(got.data(), dev, total * sizeof(int32_t), cudaMemcpyDeviceToHost, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    ASSERT_EQ(got, expected) << "step " << step;
  }
  staging.copy_to_device(dev, nullptr, 0, stream);  // nothing to copy: no-op
  cudaFree(dev);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace fdpp
