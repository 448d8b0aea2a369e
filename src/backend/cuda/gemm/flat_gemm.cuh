// Flat GEMM on tensor cores for decode and small batches (FlashDecoding++ section 1b, M1 <= M < M2):
//   out [M, N] = x [M, K] . w [N, K]^T (+ bias [N]) (+ residual [M, N]),   M in 1..64,
// fp16 or bf16 inputs, fp32 accumulation, one rounding at the end; w is row-major [N, K], as
// checkpoints store it. The weights are the mma's 16-row A operand and the tokens its 8-column B
// operand, so M is padded to a multiple of 8, not 64. The launcher enqueues on `stream`, returns
// a Status and never synchronises. Includable from host C++ (declarations only).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/gemm/rope_store.cuh"
#include "fdpp/status.h"

namespace fdpp::cuda {

// The largest M one launch serves (FlatGemmTraits::kMaxM); larger M is a tiled GEMM's job.
inline constexpr int64_t kFlatGemmMaxM = 64;
// The largest M the streamed mainloop (and with it the RMSNorm prologue) serves.
inline constexpr int64_t kFlatGemmStreamedMaxM = 16;
// The most CTAs that split K for one block of rows (the largest portable thread-block cluster).
inline constexpr int kFlatGemmMaxSplits = 8;

// How K is walked (flat_gemm.cu's header): kStreamed loads weights straight into registers (M <=
// kFlatGemmStreamedMaxM), kPipelined through a cp.async shared-memory pipeline (any M). kAuto
// takes kStreamed wherever it can run; forcing one is for benchmarks and tests.
enum class FlatGemmMainloop { kAuto, kStreamed, kPipelined };

// The largest M with the QKV epilogue (FlatGemmParams::rope): its variants have one n-tile.
inline constexpr int64_t kFlatGemmRopeMaxM = 8;

template <typename T>
struct FlatGemmParams {
  const T* x = nullptr;         // [M, K] contiguous, 16-byte aligned; must not overlap out / out_f32
  const T* w = nullptr;         // [N, K] row-major, 16-byte aligned
  const T* bias = nullptr;      // [N] or nullptr
  const T* residual = nullptr;  // [M, N] or nullptr: out = x . w^T + bias + residual
  T* out = nullptr;             // [M, N]; may be the residual pointer itself (in-place residual add)
  int64_t M = 0, N = 0, K = 0;
  float* out_f32 = nullptr;     // [M, N] fp32 instead of out (logits); exactly one of out, out_f32
  // RMSNorm prologue (streamed mainloop only): when set, row m of the product's input is
  // rmsnorm(x[m]) * norm_weight; x's sums of squares are gathered while the weights stream and
  // 1/rms scales the sums before bias and residual (no normalised copy of x is written).
  const T* norm_weight = nullptr;  // [K], 16-byte aligned, or nullptr
  float norm_eps = 0.0f;
  // With norm_weight set: the norm's weight is all ones, having been folded into w's columns
  // (Backend::folds_norm_weights), so the kernel takes only the sums of squares and 1/rms and
  // never reads norm_weight or scales x: a cheaper variant, which the dispatcher fuses up to M = 16.
  bool norm_scale_only = false;
  // Gated SiLU epilogue (streamed mainloop only): w is the fused gate/up matrix with its rows
  // interleaved (row 2j gate_proj row j, row 2j + 1 up_proj row j), and out [M, N / 2] (or
  // out_f32) = silu(gate) * up instead of the products. N even, no residual.
  bool gated_silu = false;
  // The QKV projection's decode epilogue (rope_store.cuh; streamed mainloop only): when
  // rope.q_out is set, each 16-row tile holds 8 rotation pairs (i, i + hd / 2) of one head, the
  // pairs are rotated and stored into q_out and the cache, and out and out_f32 stay null.
  // hd % 16 == 0, N = (Hq + 2 Hkv) * hd, no residual, no gated epilogue.
  RopeStore<T> rope;
  FlatGemmMainloop mainloop = FlatGemmMainloop::kAuto;
  // CTAs along K per block of rows: 0 takes the plan's policy (flat_gemm_traits.h); 1..
  // kFlatGemmMaxSplits forces that many (benchmarks and tests compare the policies).
  int splits = 0;
  // Streamed mainloop: steps of weights a warp holds in registers. 0 takes the plan's choice
  // (flat_gemm_traits.h, kStreamedDeepBuffers); 2 forces the usual pair, 3 the deep ring, which
  // one-split launches have at 1..8 tokens without the weighted norm and at 9..16 without a norm
  // prologue or the QKV epilogue (kUnsupported elsewhere).
  int weight_buffers = 0;
};

// How one launch is cut (computed on the host per call; the bench prints it).
struct FlatGemmPlan {
  int m_tiles = 0;     // ceil(M / 8): groups of 8 tokens (mma n-tiles) the kernel computes
  int m_class = 0;     // kernel variant: 1, 2, 4 or 8 n-tiles, the smallest >= m_tiles
  bool streamed = false;  // the mainloop: streamed (true) or pipelined
  int n_blocks = 0;    // row blocks (grid.y), one block of weight rows each: ceil(N / 16) streamed, ceil(N / 128) pipelined
  int k_tiles = 0;     // steps along K: ceil(K / kStreamedKStep (512)) streamed, ceil(K / kKTile (64)) pipelined
  int splits = 1;      // CTAs along K per block of rows (grid.x) = the thread-block cluster size (1..8)
  int smem_bytes = 0;  // dynamic shared memory per CTA
  int weight_buffers = 0;  // streamed: steps of weights per warp in registers (2, or 3: the deep ring); 0 pipelined
};

// Validates p (the same checks as the launcher) and fills *plan for the current device.
template <typename T>
Status plan_flat_gemm(const FlatGemmParams<T>& p, FlatGemmPlan* plan);

// Requirements: M <= kFlatGemmMaxM, K % 8 == 0, x and w 16-byte aligned (16-byte loads);
// anything else returns kInvalidArgument with a message (route it to the GEMV or cuBLASLt). Also
// kInvalidArgument for a missing pointer, both or neither output, x overlapping the output, or
// the streamed mainloop forced above kFlatGemmStreamedMaxM, splits outside 0..kFlatGemmMaxSplits or
// more row blocks than a grid's y dimension holds (65535), weight_buffers other than 0, 2 or 3;
// kUnsupported for a forced deep ring (weight_buffers = 3) where it has no variant, the norm prologue
// where flat_gemm_can_fuse_norm is false or with the pipelined mainloop forced, and for the gated
// epilogue off the streamed mainloop, with an odd N or a residual; kInternal for a failed launch.
template <typename T>
Status launch_flat_gemm(const FlatGemmParams<T>& p, cudaStream_t stream);

// Whether launch_flat_gemm takes the RMSNorm prologue for these operands.
bool flat_gemm_can_fuse_norm(int64_t M, int64_t K, const void* x, const void* w, const void* norm_weight);

// Global workspace the launch needs: none. Split-K partial sums meet in distributed shared
// memory inside the launch (flat_gemm_traits.h); kept so callers size every linear kernel alike.
constexpr size_t flat_gemm_workspace_bytes(int64_t /*M*/, int64_t /*N*/, int64_t /*K*/) { return 0; }

}  // namespace fdpp::cuda
