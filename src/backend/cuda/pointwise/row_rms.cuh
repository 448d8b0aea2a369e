// Block-wide helpers for an RMSNorm's per-row scale, shared by the norm kernel and by the kernels
// that apply a norm after the product (a norm weight folded into the next projection's columns
// leaves only rsqrt(mean(x^2) + eps) per row, which a consumer of the product can apply).
#pragma once

#include <cstdint>

#include "backend/cuda/cuda_utils.cuh"

namespace fdpp::cuda {

// The sum of v over the block (every thread gets it). Two barriers; kThreads a multiple of 32.
template <int kThreads>
__device__ float block_sum(float v) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024);
  __shared__ float warp_sums[kThreads / 32];
  __shared__ float total;
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_sums[lane] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0) total = v;
  }
  __syncthreads();
  return total;
}

// rsqrt(mean(x^2) + eps) of a row whose squares each thread has summed in part: the RMSNorm's scale.
template <int kThreads>
__device__ float block_inv_rms(float partial_sum_sq, int64_t dim, float eps) {
  return rsqrtf(block_sum<kThreads>(partial_sum_sq) / static_cast<float>(dim) + eps);
}

// rsqrt(mean(row[0, dim)^2) + eps) for one row, computed by the whole block (every thread gets
// it). 16-byte loads where the row allows them: a decode row is a few loads per thread, all in
// flight at once.
template <int kThreads, typename T>
__device__ float block_row_inv_rms(const T* row, int64_t dim, float eps) {
  float sum_sq = 0.0f;
  bool vectorised = false;
  if constexpr (sizeof(T) == 2) {
    vectorised = dim % 8 == 0 && reinterpret_cast<uintptr_t>(row) % 16 == 0;
    if (vectorised) {
      const uint4* pieces = reinterpret_cast<const uint4*>(row);
      for (int64_t i = threadIdx.x; i < dim / 8; i += kThreads) {
        float v[8];
        unpack8<T>(pieces[i], v);
#pragma unroll
        for (int e = 0; e < 8; ++e) sum_sq += v[e] * v[e];
      }
    }
  }
  if (!vectorised) {
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) {
      const float v = to_float(row[i]);
      sum_sq += v * v;
    }
  }
  return block_inv_rms<kThreads>(sum_sq, dim, eps);
}

}  // namespace fdpp::cuda
