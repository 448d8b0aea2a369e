// backend/cuda/host_staging.h: copies queued from the page-locked arenas land intact, in order,
// when the source is overwritten at once, when a step's copies outgrow the arena (it grows), when
// the arenas are reused step after step, and when a step is staged while the one before it is
// still queued behind the GPU's work.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <thread>
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

// A step staged while the previous step's copies wait in the stream (behind a host function that
// holds the stream, as a queued step ahead's GPU work would): begin() must not wait for them, and
// both steps' bytes land intact.
TEST(GpuHostStaging, AStepIsStagedWhileThePreviousOnesCopiesAreQueued) {
  FDPP_REQUIRE_GPU();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cuda::HostStaging staging;
  constexpr size_t kCount = 5000;
  int32_t* dev = nullptr;
  ASSERT_EQ(cudaMalloc(&dev, 2 * kCount * sizeof(int32_t)), cudaSuccess);
  std::atomic<bool> open{false};
  auto gate = [](void* flag) {  // holds the stream until opened, for at most 10 s
    const auto t0 = std::chrono::steady_clock::now();
    while (!static_cast<std::atomic<bool>*>(flag)->load() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  };
  for (uint32_t round = 0; round < 2; ++round) {
    open = false;
    ASSERT_EQ(cudaLaunchHostFunc(stream, gate, &open), cudaSuccess);
    std::vector<int32_t> first = random_ints(kCount, 10 + round), second = random_ints(kCount, 20 + round);
    const std::vector<int32_t> want_first = first, want_second = second;
    staging.begin();
    staging.copy_to_device(dev, first.data(), kCount * sizeof(int32_t), stream);
    std::fill(first.begin(), first.end(), -1);
    const auto t0 = std::chrono::steady_clock::now();
    staging.begin();  // the other arena: its copies (two steps ago) have landed
    staging.copy_to_device(dev + kCount, second.data(), kCount * sizeof(int32_t), stream);
    const double staged_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fill(second.begin(), second.end(), -1);
    open = true;
    EXPECT_LT(staged_s, 5.0) << "begin() waited for the previous step's queued copies";
    std::vector<int32_t> got(2 * kCount);
    ASSERT_EQ(cudaMemcpyAsync(got.data(), dev, got.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, stream),
              cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_TRUE(std::equal(want_first.begin(), want_first.end(), got.begin())) << "round " << round;
    EXPECT_TRUE(std::equal(want_second.begin(), want_second.end(), got.begin() + kCount)) << "round " << round;
  }
  cudaFree(dev);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace fdpp
