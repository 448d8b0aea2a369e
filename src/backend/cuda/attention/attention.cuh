// Attention over the paged KV cache, with FlashDecoding++'s asynchronized softmax.
//
// Every split of a row accumulates sum(e^(s-phi) * v) and sum(e^(s-phi)) with one fixed phi, so
// splits never rescale and never wait for each other; the merge is a plain sum and one division.
// Every score is checked against [lo, hi]; a row with any score outside is recomputed by the
// ordinary online softmax in the merge kernel, so the result is always right.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/pointwise/pointwise.cuh"
#include "fdpp/status.h"

namespace fdpp::cuda {

// Unified max value and the range of scaled scores s = q.k * scale it is valid for.
// Numerically: e^(hi - phi) times the longest context must stay below fp32's max, and
// e^(lo - phi) above its smallest normal; validate_softmax_range() checks that.
struct SoftmaxRange {
  float phi = 0.0f;
  float lo = -60.0f;
  float hi = 60.0f;
};
Status validate_softmax_range(const SoftmaxRange& range, int64_t max_context);

// One layer of the paged cache: k, v [num_blocks, block_size, Hkv, hd].
template <typename T>
struct PagedKv {
  T* k = nullptr;
  T* v = nullptr;
  int32_t num_blocks = 0;
  int32_t block_size = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
};

// Where each token of the step sits (device arrays).
struct TokenSlots {
  const int32_t* positions = nullptr;     // [T] position of token t in its sequence
  const int32_t* token_seq = nullptr;     // [T] sequence of token t
  const int32_t* block_tables = nullptr;  // [S, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0;
  int64_t tokens = 0;                     // T
};

// Splits the fused QKV projection's output: q rotated (rotate-half RoPE by the token's position,
// angle position * inv_freq[i] in fp32 as HF computes it) into q_out; k rotated and v stored in
// the token's cache slot. One block per token.
template <typename T>
struct QkvStoreParams {
  PagedKv<T> kv;
  TokenSlots slots;
  const T* qkv = nullptr;          // [T, (Hq + 2 Hkv) * hd]: Hq q heads, Hkv k heads, Hkv v heads
  const float* inv_freq = nullptr; // [hd / 2] device
  T* q_out = nullptr;              // [T, Hq, hd]
  int32_t num_q_heads = 0;
  DeferredRowScale<T> scale;       // set: qkv row t is scaled by its token's inv rms first (the
                                   // QKV projection's norm, deferred; pointwise.cuh)
};
template <typename T> Status launch_qkv_store(const QkvStoreParams<T>& p, cudaStream_t stream);

// Host-side partitioning of one attention launch: computed once per step shape.
struct AttentionPlan {
  int32_t num_splits = 1;      // KV splits per (token, kv head)
  int32_t split_size = 0;      // positions per split
  bool fast_path = false;      // head_dim 64 or 128 with a supported GQA ratio
  bool tensor_cores = false;   // the tensor-core kernel (attention_mma.cuh) instead of the CUDA-core one
  int32_t mma_stages = 3;      // the tensor-core kernel's ring depth: SplitKvTraits::kMmaStages or kMmaShallowStages
  bool mma_bulk = false;       // the tensor-core kernel's copies: bulk copies on the TMA unit (sm_90), else cp.async
  bool mma_tensor_maps = false; // with mma_bulk: tensor copies where tiles lie in one cache block (attention_mma.cuh)
  bool split_pdl = true;       // the split kernel launches programmatically (launch.cuh) where PDL is on
  bool merge_early = true;     // the merge lets its successor launch before its own wait (launch.cuh)
  size_t workspace_bytes = 0;  // partial sums + row flags
};
// Decode launches: `rows` query tokens, each attending over up to max_kv_len slots.
AttentionPlan plan_attention(int64_t rows, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                             int64_t max_kv_len, int sm_count);
// Prefill launches: one split per row (a tile of query tokens walks its whole causal range); the
// workspace holds one range flag per (row, q head).
AttentionPlan plan_prefill_attention(int64_t rows, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim);

// Causal attention of q [T, Hq, hd] over each token's slots [0, position]; out [T, Hq, hd].
template <typename T>
struct AttentionParams {
  const T* q = nullptr;
  T* out = nullptr;
  PagedKv<T> kv;
  TokenSlots slots;
  int32_t num_q_heads = 0;
  float scale = 1.0f;                          // usually 1/sqrt(hd)
  SoftmaxRange range;
  AttentionPlan plan;
  void* workspace = nullptr;                   // plan.workspace_bytes, device
  unsigned long long* fallback_rows = nullptr; // device counter: rows recomputed (may be null)
  // The tokens this launch computes: its row z is token rows[z]. nullptr: every token (z = t).
  const int32_t* rows = nullptr;               // [num_rows] device
  int64_t num_rows = 0;
  // Prefill launches only: tiles of up to kPrefillTileRows consecutive rows of one sequence with
  // increasing positions, as (first row, count) pairs.
  const int32_t* tiles = nullptr;              // [num_tiles, 2] device
  int32_t num_tiles = 0;

  __host__ __device__ int64_t row_count() const { return rows != nullptr ? num_rows : slots.tokens; }
  __host__ __device__ int64_t token_of(int64_t z) const { return rows != nullptr ? rows[z] : z; }
};
// Decode path: split-KV per row (any token mix works; prefill rows are just slower here).
template <typename T> Status launch_attention(const AttentionParams<T>& p, cudaStream_t stream);
// Prefill path: a block per (tile, q head) on tensor cores, K/V tiles shared by its warps through
// shared memory; rows out of range are then recomputed by the online softmax (prefill.cu).
template <typename T> Status launch_prefill_attention(const AttentionParams<T>& p, cudaStream_t stream);

// Largest number of query tokens one prefill tile holds: the rows of one block of the tiled
// kernel (PrefillTraits::kBlockRows, 4 warps x 32 rows).
inline constexpr int kPrefillTileRows = 128;

}  // namespace fdpp::cuda
