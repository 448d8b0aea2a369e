// Pointwise and row-wise kernels of the forward pass. Each launcher enqueues on `stream`, returns
// a Status and never synchronises. T is __half or __nv_bfloat16 (float where noted).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "fdpp/status.h"

namespace fdpp::cuda {

// out[r, :] = src[index[r], :]  — embedding lookup (index = token ids) and logit-row gather.
template <typename T>
struct GatherRowsParams {
  const T* src = nullptr;          // [src_rows, dim]
  const int32_t* index = nullptr;  // [rows] device, each in [0, src_rows)
  T* out = nullptr;                // [rows, dim]
  int64_t rows = 0;
  int64_t dim = 0;
};
template <typename T> Status launch_gather_rows(const GatherRowsParams<T>& p, cudaStream_t stream);

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * weight   (fp32 math)
// With residual: x[r, :] += residual[r, :] first (written back to x), then the norm.
template <typename T>
struct RmsNormParams {
  T* x = nullptr;                  // [rows, dim]
  const T* residual = nullptr;     // [rows, dim] or nullptr
  const T* weight = nullptr;       // [dim]
  T* out = nullptr;                // [rows, dim] (may alias x when residual is nullptr)
  int64_t rows = 0;
  int64_t dim = 0;
  float eps = 1e-6f;
};
template <typename T> Status launch_rmsnorm(const RmsNormParams<T>& p, cudaStream_t stream);

// Where a product's rows still need their RMSNorm's scale rsqrt(mean(x^2) + eps): the norm's
// weight was folded into the projection's columns (Backend::folds_norm_weights) and the product
// was taken of the unnormalised rows, so its consumer scales row r by the inv rms of rows[r].
template <typename T>
struct DeferredRowScale {
  const T* rows = nullptr;  // [R, dim], the projection's input; nullptr: no scale
  int64_t dim = 0;
  float eps = 0.0f;
};

// out [rows, F] = silu(gate) * up from the fused gate/up projection's output [rows, 2F]: gate in
// columns [0, F) and up in [F, 2F), or, interleaved, gate j in column 2j and up j in 2j + 1.
template <typename T>
struct SiluMulParams {
  const T* gate_up = nullptr;      // [rows, 2F]
  T* out = nullptr;                // [rows, F]
  int64_t rows = 0;
  int64_t cols = 0;                // F
  bool interleaved = false;
  DeferredRowScale<T> scale;       // set: gate and up of row r first scaled by its inv rms
                                   // (interleaved only)
};
template <typename T> Status launch_silu_mul(const SiluMulParams<T>& p, cudaStream_t stream);

// x[i] += y[i]
template <typename T>
struct AddParams {
  T* x = nullptr;                  // [n]
  const T* y = nullptr;            // [n]
  int64_t n = 0;
};
template <typename T> Status launch_add(const AddParams<T>& p, cudaStream_t stream);

// w [rows, cols] *= scale [cols], each column by its own factor, rounded once: a norm weight folded
// into the projection after the norm, at load time.
template <typename T>
Status launch_scale_columns(T* w, const T* scale, int64_t rows, int64_t cols, cudaStream_t stream);

// dst[i] = (T) src[i] from fp32 — used once at load time for F32 checkpoints.
template <typename T>
Status launch_convert_from_f32(const float* src, T* dst, int64_t n, cudaStream_t stream);

// dst[i] = mean + stddev * u(i), u uniform with unit variance from a hash of (seed, i).
template <typename T>
Status launch_fill_random(T* dst, int64_t n, uint64_t seed, float mean, float stddev, cudaStream_t stream);

}  // namespace fdpp::cuda
