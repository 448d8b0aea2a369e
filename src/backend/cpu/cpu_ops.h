// The CPU reference ops: plain loops, fp32 activations and fp32 accumulation. This file is the
// specification every GPU kernel is tested against. Weights may be F32, F16 or BF16 (TensorView
// carries the dtype); activations are fp32 and contiguous.
#pragma once

#include <cstdint>
#include <span>

#include "core/histogram.h"
#include "core/tensor.h"

namespace fdpp::cpu {

// out[t, :] = table[tokens[t], :]
// table: [V, D] any float dtype; tokens: [T], each in [0, V); out: [T, D]
void embed(const TensorView& table, std::span<const int32_t> tokens, float* out);

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * weight   (HF LlamaRMSNorm, fp32 math)
// x, out: [rows, D] (may alias); weight: [D] any float dtype
void rmsnorm(const float* x, const TensorView& weight, float eps, int64_t rows, float* out);

// out[m, n] = sum_k x[m, k] * w[n, k] + (bias ? bias[n] : 0)
// x: [M, K]; w: [N, K] row-major any float dtype; bias: [N] or empty; out: [M, N]
void linear(const float* x, int64_t M, const TensorView& w, const TensorView& bias, float* out);

// HF rotate-half RoPE, in place: for each head, pairs (i, i + hd/2) rotate by
// angle = positions[t] * inv_freq[i].
// x: [T, n_heads, hd]; positions: [T]; inv_freq: [hd/2]
void rope_rotate_half(float* x, int64_t T, int64_t n_heads, int64_t head_dim,
                      std::span<const int32_t> positions, std::span<const float> inv_freq);

// out[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x));  all [n] (out may alias)
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

// x[i] += y[i]; both [n]
void add_inplace(float* x, const float* y, int64_t n);

// One layer of a paged KV cache.
// k, v: [num_blocks, block_size, Hkv, hd]; slot p of a sequence lives in block
// block_table[p / block_size] at row p % block_size.
struct PagedKv {
  float* k = nullptr;
  float* v = nullptr;
  int32_t num_blocks = 0;
  int32_t block_size = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
};

// Where each token of a batch sits: the batch concatenates the new tokens of S sequences.
struct AttentionBatch {
  std::span<const int32_t> positions;     // [T] position of token t within its sequence
  std::span<const int32_t> token_seq;     // [T] which sequence (0..S-1) token t belongs to
  std::span<const int32_t> block_tables;  // [S, max_blocks_per_seq] row-major, -1 = unused
  int32_t max_blocks_per_seq = 0;
};

// Writes each token's k and v into its slot (positions[t]) of its sequence.
// k, v: [T, Hkv, hd]
void kv_write(const PagedKv& kv, const float* k, const float* v, const AttentionBatch& batch);

// Causal GQA attention over the cache: token t at position p attends to slots [0, p] of its
// sequence (its own k/v must already be written). Query head h reads KV head h / (Hq / Hkv).
// softmax(q.k * scale) with fp32 math and the max subtracted.
// q, out: [T, Hq, hd]. scores: when given, every scaled score q.k * scale is added to it
// (softmax-input statistics for `fdpp calibrate`).
void attention(const float* q, int64_t num_q_heads, const PagedKv& kv, const AttentionBatch& batch,
               float scale, float* out, Histogram* scores = nullptr);

}  // namespace fdpp::cpu
