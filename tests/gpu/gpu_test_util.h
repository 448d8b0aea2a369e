// Helpers for GPU tests: device buffers, random inputs rounded to the device dtype, skipping
// cleanly when no GPU is present.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backend/cuda/cuda_device.h"
#include "backend/cuda/dtype_of.h"
#include "core/dtype.h"
#include "support/random_fill.h"

#define FDPP_REQUIRE_GPU() \
  if (::fdpp::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"

namespace fdpp::test {

using cuda::dtype_of;

template <typename T>
T to_device_type(float v) {
  const uint16_t bits = dtype_of<T>() == DType::kF16 ? float_to_half(v) : float_to_bf16(v);
  T out;
  std::memcpy(&out, &bits, 2);
  return out;
}
template <typename T>
float from_device_type(T v) {
  uint16_t bits;
  std::memcpy(&bits, &v, 2);
  return dtype_of<T>() == DType::kF16 ? half_to_float(bits) : bf16_to_float(bits);
}

// Host values (already rounded to T, kept as float for references) and their device copy.
template <typename T>
struct DeviceArray {
  std::vector<float> host;
  T* dev = nullptr;
  explicit DeviceArray(size_t n) : host(n) { EXPECT_EQ(cudaMalloc(&dev, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess); }
  ~DeviceArray() { cudaFree(dev); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  size_t size() const { return host.size(); }
  // Fresh normal(mean, stddev) values rounded to T, drawn in parallel (support/random_fill.h).
  void fill_normal(std::mt19937& rng, float stddev, float mean = 0.0f) {
    fill_normal_chunked(host, rng, stddev, mean, [](float v) { return from_device_type(to_device_type<T>(v)); });
    upload();
  }
  void upload() {
    std::vector<T> tmp(host.size());
    const auto n = static_cast<int64_t>(host.size());
#pragma omp parallel for schedule(static) if (n >= int64_t{1} << 20)
    for (int64_t i = 0; i < n; ++i) tmp[static_cast<size_t>(i)] = to_device_type<T>(host[static_cast<size_t>(i)]);
    EXPECT_EQ(cudaMemcpy(dev, tmp.data(), tmp.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  void poison() { EXPECT_EQ(cudaMemset(dev, 0xff, host.size() * sizeof(T)), cudaSuccess); }  // NaN pattern
  std::vector<float> download() const {
    std::vector<T> tmp(host.size());
    EXPECT_EQ(cudaMemcpy(tmp.data(), dev, tmp.size() * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    std::vector<float> out(tmp.size());
    const auto n = static_cast<int64_t>(tmp.size());
#pragma omp parallel for schedule(static) if (n >= int64_t{1} << 20)
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = from_device_type(tmp[static_cast<size_t>(i)]);
    return out;
  }
};

// Device copy of host int32 data.
struct DeviceInts {
  int32_t* dev = nullptr;
  explicit DeviceInts(const std::vector<int32_t>& v) {
    EXPECT_EQ(cudaMalloc(&dev, std::max<size_t>(v.size(), 1) * 4), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(dev, v.data(), v.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceInts() { cudaFree(dev); }
  DeviceInts(const DeviceInts&) = delete;
  DeviceInts& operator=(const DeviceInts&) = delete;
};

// max |got - want| / max |want|: the error relative to the tensor's scale.
inline double scaled_max_error(const std::vector<float>& got, const std::vector<double>& want) {
  double max_err = 0, max_ref = 1e-30;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();  // std::max would skip a NaN
    max_err = std::max(max_err, std::abs(double(got[i]) - want[i]));
    max_ref = std::max(max_ref, std::abs(want[i]));
  }
  return max_err / max_ref;
}

}  // namespace fdpp::test
