// The ordinary (synchronized) online softmax for one (row, query head), computed by one block of
// MergeTraits::kThreads threads straight from the paged cache. It is the fallback of every
// attention path for rows with a score outside [lo, hi], and the whole computation for head dims
// without a fast kernel.
#pragma once

#include <cmath>
#include <cstdint>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/attention/attention_traits.h"
#include "backend/cuda/attention/split_common.cuh"
#include "backend/cuda/cuda_utils.cuh"

namespace fdpp::cuda::detail {

__device__ inline float block_max(float v, float* scratch) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float m = scratch[0];
  for (int w = 1; w < MergeTraits::kThreads / 32; ++w) m = fmaxf(m, scratch[w]);
  __syncthreads();
  return m;
}

// q . k over hd elements in index order; kWide: 16-byte loads where hd % 8 == 0 and both rows are
// aligned (the paged cache's rows are: a row costs hd / 8 loads, not hd 2-byte ones).
template <typename T, bool kWide>
__device__ inline float dot_row(const T* q, const T* k, int hd) {
  float s = 0.0f;
  if (kWide && hd % 8 == 0 && ((reinterpret_cast<uintptr_t>(q) | reinterpret_cast<uintptr_t>(k)) & 15u) == 0) {
    for (int d = 0; d < hd; d += 8) {
      float qf[8], kf[8];  // __ldg keeps each a single 16-byte load (a plain one was split into 2-byte ones)
      unpack8<T>(__ldg(reinterpret_cast<const uint4*>(q + d)), qf);
      unpack8<T>(__ldg(reinterpret_cast<const uint4*>(k + d)), kf);
#pragma unroll
      for (int i = 0; i < 8; ++i) s += qf[i] * kf[i];
    }
    return s;
  }
  for (int d = 0; d < hd; ++d) s += to_float(q[d]) * to_float(k[d]);
  return s;
}

// Writes out row (token_of(z), h): chunks of kChunk positions, one score per thread, running max
// and rescale. Every thread of the block must call it (it synchronises the block).
template <typename T, bool kBatchedLoads>
__device__ void online_softmax_row(const AttentionParams<T>& p, int64_t z, int h) {
  constexpr int kThreads = MergeTraits::kThreads;
  __shared__ float e_chunk[MergeTraits::kChunk];
  __shared__ float scratch[kThreads / 32];
  constexpr int kMaxDimsPerThread = 2;  // head_dim <= 256
  const int64_t t = p.token_of(z);
  const int hd = p.kv.head_dim;
  const int64_t qrow = t * p.num_q_heads + h;
  T* out = p.out + qrow * hd;
  float acc[kMaxDimsPerThread] = {};
  float m = -INFINITY, total = 0.0f;
  const int group = p.num_q_heads / p.kv.num_kv_heads;
  const int kv_head = h / group;
  const int kv_len = p.slots.positions[t] + 1;
  const int64_t row_elems = int64_t{p.kv.num_kv_heads} * hd;
  const int32_t* table = p.slots.block_tables + int64_t{p.slots.token_seq[t]} * p.slots.max_blocks_per_seq;
  const T* q = p.q + qrow * hd;
  // kBatchedLoads: each thread's K row slot is kept for the V pass (a position's slot costs a
  // block-table load and a division), and positions past the row read its last slot with weight 0,
  // so the V loop has no branch and keeps kFallbackLoads loads in flight.
  __shared__ int32_t v_slot[kBatchedLoads ? MergeTraits::kChunk : 1];
  const int64_t head_offset = int64_t{kv_head} * hd;
  for (int base = 0; base < kv_len; base += kThreads) {
    const int pos = base + threadIdx.x;
    float s = -INFINITY;
    if constexpr (kBatchedLoads) {
      const int64_t slot = cache_slot(table, min(pos, kv_len - 1), p.kv.block_size);
      v_slot[threadIdx.x] = static_cast<int32_t>(slot);  // a GPU's cache holds far fewer than 2^31 slots
      if (pos < kv_len) s = dot_row<T, true>(q, p.kv.k + slot * row_elems + head_offset, hd) * p.scale;
    } else if (pos < kv_len) {
      s = dot_row<T, false>(q, p.kv.k + slot_offset(table, pos, p.kv.block_size, row_elems) + head_offset, hd) *
          p.scale;
    }
    const float m_new = fmaxf(m, block_max(s, scratch));
    const float rescale = __expf(m - m_new);  // 0 on the first chunk (m = -inf)
    const float e = pos < kv_len ? __expf(s - m_new) : 0.0f;
    e_chunk[threadIdx.x] = e;
    __syncthreads();
    float chunk_sum = 0.0f;
    const int n = min(kThreads, kv_len - base);
    for (int j = 0; j < n; ++j) chunk_sum += e_chunk[j];
    total = total * rescale + chunk_sum;
#pragma unroll
    for (int r = 0; r < kMaxDimsPerThread; ++r) {
      const int d = threadIdx.x + r * kThreads;
      if (d >= hd) break;
      float a = acc[r] * rescale;
      if constexpr (kBatchedLoads) {
        constexpr int kLoads = MergeTraits::kFallbackLoads;
        static_assert(MergeTraits::kChunk % kLoads == 0);
        for (int j0 = 0; j0 < n; j0 += kLoads) {  // e_chunk is 0 past n: the sum is the same
          float v[kLoads];
#pragma unroll
          for (int u = 0; u < kLoads; ++u)
            v[u] = to_float(p.kv.v[int64_t{v_slot[j0 + u]} * row_elems + head_offset + d]);
#pragma unroll
          for (int u = 0; u < kLoads; ++u) a += e_chunk[j0 + u] * v[u];
        }
      } else {
        for (int j = 0; j < n; ++j) {
          const T* v = p.kv.v + slot_offset(table, base + j, p.kv.block_size, row_elems) + head_offset;
          a += e_chunk[j] * to_float(v[d]);
        }
      }
      acc[r] = a;
    }
    m = m_new;
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < kMaxDimsPerThread; ++r) {
    const int d = threadIdx.x + r * kThreads;
    if (d < hd) out[d] = from_float<T>(acc[r] / total);
  }
}

}  // namespace fdpp::cuda::detail
