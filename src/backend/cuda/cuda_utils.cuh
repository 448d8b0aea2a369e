// Small device helpers shared by the CUDA kernels: element conversions and 16-byte vectors.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "fdpp/status.h"

namespace fdpp::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

inline bool is_aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Whether the byte ranges [a, a + a_bytes) and [b, b + b_bytes) share a byte (launchers refuse
// an input that overlaps their output).
inline bool ranges_overlap(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
  const auto a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return a0 < b0 + static_cast<uintptr_t>(b_bytes) && b0 < a0 + static_cast<uintptr_t>(a_bytes);
}

// 8 half-precision elements = one 16-byte load.
struct alignas(16) Vec8 {
  uint4 raw;
};

template <typename T>
__device__ __forceinline__ void unpack8(const uint4& raw, float (&out)[8]) {
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) out[i] = to_float(e[i]);
}

template <typename T>
__device__ __forceinline__ uint4 pack8(const float (&in)[8]) {
  uint4 raw;
  T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) e[i] = from_float<T>(in[i]);
  return raw;
}

// silu(g) = g * sigmoid(g), as HF's SiLU; the one definition the pointwise kernel and the linear
// kernels' gated epilogue share.
__device__ __forceinline__ float silu(float g) { return g / (1.0f + __expf(-g)); }

// The last step of a linear kernel's output element o (P: GemvParams / FlatGemmParams): adds the
// residual (which may alias out: read before the store), then stores fp32 or rounds once to T.
template <typename P>
__device__ __forceinline__ void store_linear_output(const P& p, int64_t o, float y) {
  if (p.residual != nullptr) y += to_float(p.residual[o]);
  if (p.out_f32 != nullptr) {
    p.out_f32[o] = y;
  } else {
    p.out[o] = from_float<std::remove_pointer_t<decltype(p.out)>>(y);
  }
}

// The gated SiLU epilogue's store (P: GemvParams / FlatGemmParams with gated_silu): gate and up
// are the finished sums of interleaved rows n = 2j and 2j + 1 for token m; out[m, j] = silu(gate)
// * up, rounded once (the unfused path rounds the products and then the result).
template <typename P>
__device__ __forceinline__ void store_gated_output(const P& p, int64_t m, int64_t n, float gate, float up) {
  const int64_t o = m * (p.N / 2) + n / 2;
  const float y = silu(gate) * up;
  if (p.out_f32 != nullptr) {
    p.out_f32[o] = y;
  } else {
    p.out[o] = from_float<std::remove_pointer_t<decltype(p.out)>>(y);
  }
}

// Status for the last launch: kernels report through this, launchers never synchronise.
inline Status last_launch_status(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return Status::ok();
  return {ErrorCode::kInternal, std::string(what) + ": " + cudaGetErrorString(err)};
}

// Status for a launch that returned err (launch_kernel's), else for the last launch.
inline Status launch_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return last_launch_status(what);
  (void)cudaGetLastError();
  return {ErrorCode::kInternal, std::string(what) + ": launch failed: " + cudaGetErrorString(err)};
}

inline unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

}  // namespace fdpp::cuda
