// Shared pieces of the split-KV attention kernels (attention.cu, attention_mma.cuh): the
// workspace layout, cache addressing, and the end of a split (warps' partial sums combined in
// shared memory and written out); and, with the tiled prefill kernel, the packing of weights P
// for the tensor cores.
#pragma once

#include <cmath>
#include <type_traits>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/attention/attention_traits.h"
#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/ptx.cuh"

namespace fdpp::cuda::detail {

constexpr float kLog2e = 1.4426950408889634f;

// Two weights as one register of P in PT (fp16 or bf16; the first in the low half), their rounded
// values added to sum: the denominator sums the weights the numerator uses, so the result is an
// exact weighted average of V and only the weights are rounded.
template <typename PT>
__device__ __forceinline__ uint32_t pack_weights(float first, float second, float& sum) {
  if constexpr (std::is_same_v<PT, __half>) {
    const __half2 h = __floats2half2_rn(first, second);
    const float2 f = __half22float2(h);
    sum += f.x + f.y;
    return *reinterpret_cast<const uint32_t*>(&h);
  } else {
    const uint32_t bits = bf16x2_bits(first, second);
    sum += bf16_lo_float(bits) + bf16_hi_float(bits);
    return bits;
  }
}

// Whether one mma row of P may be fp16: xmax, log2 of the largest weight this lane holds for the
// row (-inf where none is live), reduced over the quad of lanes sharing the row, must lie in
// [PrefillTraits::kHalfPMinLog2, kHalfPMaxLog2]. Every lane of the warp calls it.
__device__ __forceinline__ bool row_fits_half(float xmax) {
  xmax = fmaxf(xmax, __shfl_xor_sync(0xffffffffu, xmax, 1));
  xmax = fmaxf(xmax, __shfl_xor_sync(0xffffffffu, xmax, 2));
  return xmax <= PrefillTraits::kHalfPMaxLog2 && (xmax >= PrefillTraits::kHalfPMinLog2 || xmax == -INFINITY);
}

// Workspace layout: partial_acc [T, Hq, splits, hd] f32 | partial_sum [T, Hq, splits] f32 |
// flags [T, Hq, splits] i32 (1 = a score of that split left the range). Every split writes all
// three, so the workspace needs no clearing between launches.
struct Workspace {
  float* acc;
  float* sum;
  int32_t* flags;
};
__host__ __device__ inline Workspace carve(void* base, int64_t tokens, int64_t hq, int64_t splits, int64_t hd) {
  Workspace w;
  w.acc = static_cast<float*>(base);
  w.sum = w.acc + tokens * hq * splits * hd;
  w.flags = reinterpret_cast<int32_t*>(w.sum + tokens * hq * splits);
  return w;
}

// Cache slot of position `pos` of a sequence, through its block-table row.
__device__ __forceinline__ int64_t cache_slot(const int32_t* table, int32_t pos, int32_t block_size) {
  return int64_t{table[pos / block_size]} * block_size + pos % block_size;
}

// Element offset of cache slot `pos` of a sequence (row of [Hkv, hd] values).
__device__ __forceinline__ int64_t slot_offset(const int32_t* table, int32_t pos, int32_t block_size,
                                               int64_t row_elems) {
  return cache_slot(table, pos, block_size) * row_elems;
}

// The online-softmax recomputation of one (launch row, q head) by a block of MergeTraits::kThreads
// threads (online_softmax.cuh, which includes this header; every kernel file includes both).
// kBatchedLoads: 16-byte K loads and several V loads in flight (the merge and prefill fallback
// kernels); the split kernels' inline copy keeps one load at a time, since the batched loads cost
// registers that push those kernels past their bounds into spills.
template <typename T, bool kBatchedLoads>
__device__ void online_softmax_row(const AttentionParams<T>& p, int64_t z, int h);

// Per-warp partial sums of a split, combined across warps in shared memory.
template <int kGroup, int kHeadDim>
struct SplitPartials {
  float acc[SplitKvTraits::kWarps][kGroup][kHeadDim];
  float sum[SplitKvTraits::kWarps][kGroup];
  int out_of_range;
};

// After every warp has filled its slice of `sp` (and a __syncthreads): sums over warps and writes
// the split's partial numerators, denominators and range flags for the group's query heads of
// launch row z. With one split per row the block finishes the rows itself (the merge's work:
// one division, or the online-softmax fallback for a flagged group) and launch_attention skips
// the merge launch.
template <typename T, int kGroup, int kHeadDim>
__device__ void store_split(const AttentionParams<T>& p, const SplitPartials<kGroup, kHeadDim>& sp, int64_t z,
                            int kv_head, int group, int split) {
  static_assert(SplitKvTraits::kThreads == MergeTraits::kThreads, "the fallback runs on the split's block");
  if (p.plan.num_splits == 1) {  // the whole row in one block: finish it here, no merge launch
    if (sp.out_of_range) {       // block-uniform: recompute the group's rows with the online softmax
      if (threadIdx.x == 0 && p.fallback_rows != nullptr) atomicAdd(p.fallback_rows, static_cast<unsigned long long>(group));
      for (int g = 0; g < group; ++g) online_softmax_row<T, false>(p, z, kv_head * group + g);
      return;
    }
    const int64_t t = p.token_of(z);
    for (int j = threadIdx.x; j < group * kHeadDim; j += SplitKvTraits::kThreads) {
      const int g = j / kHeadDim, d = j % kHeadDim;
      float a = 0.0f, s = 0.0f;
#pragma unroll
      for (int w = 0; w < SplitKvTraits::kWarps; ++w) {
        a += sp.acc[w][g][d];
        s += sp.sum[w][g];
      }
      p.out[(t * p.num_q_heads + kv_head * group + g) * kHeadDim + d] = from_float<T>(a / s);
    }
    return;
  }
  const Workspace ws = carve(p.workspace, p.row_count(), p.num_q_heads, p.plan.num_splits, kHeadDim);
  for (int j = threadIdx.x; j < group * kHeadDim; j += SplitKvTraits::kThreads) {
    const int g = j / kHeadDim, d = j % kHeadDim;
    float a = 0.0f;
#pragma unroll
    for (int w = 0; w < SplitKvTraits::kWarps; ++w) a += sp.acc[w][g][d];
    const int64_t row = z * p.num_q_heads + kv_head * group + g;
    ws.acc[(row * p.plan.num_splits + split) * kHeadDim + d] = a;
    if (d == 0) {
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < SplitKvTraits::kWarps; ++w) s += sp.sum[w][g];
      ws.sum[row * p.plan.num_splits + split] = s;
      ws.flags[row * p.plan.num_splits + split] = sp.out_of_range;
    }
  }
}

}  // namespace fdpp::cuda::detail
