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

// Stores k, v [T, Hkv, hd] at each token's slot.
template <typename T>
struct KvWriteParams {
  PagedKv<T> kv;
  TokenSlots slots;
  const T* k = nullptr;
  const T* v = nullptr;
};
template <typename T> Status launch_kv_write(const KvWriteParams<T>& p, cudaStream_t stream);

// Host-side partitioning of one attention launch: computed once per step shape.
struct AttentionPlan {
  int32_t num_splits = 1;      // KV splits per (token, kv head)
  int32_t split_size = 0;      // positions per split
  bool fast_path = false;      // head_dim 64 or 128 with a supported GQA ratio
  size_t workspace_bytes = 0;  // partial sums + row flags
};
AttentionPlan plan_attention(int64_t tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                             int64_t max_kv_len, int sm_count);

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
};
template <typename T> Status launch_attention(const AttentionParams<T>& p, cudaStream_t stream);

}  // namespace fdpp::cuda
