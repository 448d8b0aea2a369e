// RMSNorm on the GPU: out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * weight, fp32 math.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "fdpp/status.h"

namespace fdpp::cuda {

template <typename T>
struct RmsNormParams {
  const T* x = nullptr;       // [rows, dim]
  const T* weight = nullptr;  // [dim]
  T* out = nullptr;           // [rows, dim] (may alias x)
  int64_t rows = 0;
  int64_t dim = 0;
  float eps = 1e-6f;
};

// T: float, __half or __nv_bfloat16. Enqueues on `stream`; never synchronises.
template <typename T>
Status launch_rmsnorm(const RmsNormParams<T>& params, cudaStream_t stream);

}  // namespace fdpp::cuda
