// GEMV on CUDA cores for the smallest batch sizes (FlashDecoding++ section 1c: M < M1):
//   out [M, N] = x [M, K] . w [N, K]^T (+ bias [N]) (+ residual [M, N]),   M in 1..8,
// fp32 accumulation, one rounding at the end. w is row-major [N, K], as checkpoints store it.
// The launcher enqueues on `stream`, returns a Status and never synchronises. Includable from
// host C++ (declarations only).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/gemm/rope_store.cuh"
#include "fdpp/status.h"

namespace fdpp::cuda {

// The largest M the GEMV kernels serve; larger M is the flat GEMM's (or cuBLASLt's) job.
inline constexpr int64_t kGemvMaxM = 8;
// The largest M with the RMSNorm prologue (its M sums of squares must fit beside the accumulators).
inline constexpr int64_t kGemvNormMaxM = 4;

template <typename T>
struct GemvParams {
  const T* x = nullptr;         // [M, K] contiguous; must not overlap out / out_f32
  const T* w = nullptr;         // [N, K] row-major
  const T* bias = nullptr;      // [N] or nullptr
  const T* residual = nullptr;  // [M, N] or nullptr: out = x . w^T + bias + residual
  T* out = nullptr;             // [M, N]; may alias residual (in-place residual add)
  int64_t M = 0, N = 0, K = 0;
  float* out_f32 = nullptr;     // [M, N] fp32 instead of out (logits); exactly one of out, out_f32
  // RMSNorm prologue: when set, row m of the product's input is rmsnorm(x[m]) * norm_weight, with
  // x's sum of squares gathered while the product streams (no normalised copy of x is written).
  // Fast path and M <= kGemvNormMaxM only.
  const T* norm_weight = nullptr;  // [K] or nullptr
  float norm_eps = 0.0f;
  // Gated SiLU epilogue: w is the fused gate/up matrix with its rows interleaved (row 2j gate_proj
  // row j, row 2j + 1 up_proj row j), and out [M, N / 2] (or out_f32) = silu(gate) * up instead of
  // the products. N even, no residual.
  bool gated_silu = false;
  // The QKV projection's decode epilogue (rope_store.cuh): when rope.q_out is set, block b owns the
  // rotation pair (i, i + hd / 2) of head b / (hd / 2) instead of rows 2b, 2b + 1, and out and
  // out_f32 stay null. M <= kGemvNormMaxM (two rows per block), fast path only.
  RopeStore<T> rope;
};

// Fast path: K % 8 == 0 and x, w 16-byte aligned (16-byte loads). Anything else takes a scalar
// path with the same results. Errors: kInvalidArgument for M > kGemvMaxM, a missing pointer,
// both or neither output, or x overlapping the output; kUnsupported for the norm prologue off the
// fast path or above kGemvNormMaxM (gemv_can_fuse_norm says beforehand), and for the gated
// epilogue with an odd N or a residual, and for the QKV epilogue off the fast path, above
// kGemvNormMaxM, with N != (Hq + 2 Hkv) * hd, an odd hd, a residual, the gated epilogue or a
// missing pointer (gemv_can_rope_store says the first two beforehand); kInternal for a failed
// launch.
template <typename T>
Status launch_gemv(const GemvParams<T>& p, cudaStream_t stream);

// Whether launch_gemv takes the QKV epilogue (GemvParams::rope) for these operands.
bool gemv_can_rope_store(int64_t M, int64_t K, const void* x, const void* w);

// Whether launch_gemv takes the RMSNorm prologue for these operands.
bool gemv_can_fuse_norm(int64_t M, int64_t K, const void* x, const void* w, const void* norm_weight);

}  // namespace fdpp::cuda
