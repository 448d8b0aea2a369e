// GPU RMSNorm against the CPU reference on fresh random inputs, fp32/fp16/bf16.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/pointwise/rmsnorm.cuh"

namespace fdpp {
namespace {

#define REQUIRE_GPU() \
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"

template <typename T, DType kDType>
void check_rmsnorm(int64_t rows, int64_t dim, double tolerance) {
  std::mt19937 rng(static_cast<uint32_t>(rows * 7919 + dim));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> raw_x(static_cast<size_t>(rows * dim)), raw_w(static_cast<size_t>(dim));
  std::vector<float> x(raw_x.size()), w(raw_w.size());
  std::vector<T> dev_x(raw_x.size()), dev_w(raw_w.size());
  auto quantise = [&](float v, T& stored) -> float {
    if constexpr (kDType == DType::kF32) { stored = v; return v; }
    else if constexpr (kDType == DType::kF16) { const uint16_t h = float_to_half(v); std::memcpy(&stored, &h, 2); return half_to_float(h); }
    else { const uint16_t b = float_to_bf16(v); std::memcpy(&stored, &b, 2); return bf16_to_float(b); }
  };
  for (size_t i = 0; i < x.size(); ++i) x[i] = quantise(normal(rng) * 3.0f, dev_x[i]);
  for (size_t i = 0; i < w.size(); ++i) w[i] = quantise(1.0f + 0.1f * normal(rng), dev_w[i]);

  std::vector<float> expected(x.size());
  cpu::rmsnorm(x.data(), TensorView::contiguous(w.data(), DType::kF32, {dim}), 1e-5f, rows, expected.data());

  T *d_x = nullptr, *d_w = nullptr, *d_out = nullptr;
  ASSERT_EQ(cudaMalloc(&d_x, x.size() * sizeof(T)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_w, w.size() * sizeof(T)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_out, x.size() * sizeof(T)), cudaSuccess);
  cudaMemcpy(d_x, dev_x.data(), x.size() * sizeof(T), cudaMemcpyHostToDevice);
  cudaMemcpy(d_w, dev_w.data(), w.size() * sizeof(T), cudaMemcpyHostToDevice);
  cudaMemset(d_out, 0xff, x.size() * sizeof(T));  // poison: every element must be written
  cuda::RmsNormParams<T> p{d_x, d_w, d_out, rows, dim, 1e-5f};
  ASSERT_TRUE(cuda::launch_rmsnorm(p, nullptr).is_ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<T> got(x.size());
  cudaMemcpy(got.data(), d_out, x.size() * sizeof(T), cudaMemcpyDeviceToHost);
  cudaFree(d_x);
  cudaFree(d_w);
  cudaFree(d_out);

  double max_rel = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    float g;
    if constexpr (kDType == DType::kF32) g = got[i];
    else g = load_as_float(&got[i], kDType, 0);
    max_rel = std::max(max_rel, std::abs(double(g) - expected[i]) / (std::abs(double(expected[i])) + 1e-2));
  }
  EXPECT_LT(max_rel, tolerance) << "rows " << rows << " dim " << dim;
}

TEST(GpuRmsNorm, MatchesCpuReference) {
  REQUIRE_GPU();
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{1, 64}, {7, 4096}, {64, 5120}, {3, 333}}) {
    check_rmsnorm<float, DType::kF32>(rows, dim, 1e-5);
    check_rmsnorm<__half, DType::kF16>(rows, dim, 2e-3);
    check_rmsnorm<__nv_bfloat16, DType::kBF16>(rows, dim, 1.6e-2);
  }
}

}  // namespace
}  // namespace fdpp
