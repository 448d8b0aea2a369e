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

// The most rows one merge takes (a GQA group of up to 8 query heads per KV head), and the most
// one pass of it takes.
constexpr int kMaxMergeRows = 8;
constexpr int kMergeRowsPerPass = 4;

// Shared memory of a merge (merge_rows_splits) and of the last-block handshake (store_split).
// kSlots = kThreads / (hd / 4) float4 lanes of partial sums per row: [row][slot][hd / 4].
struct MergeScratch {
  float4 parts[kMergeRowsPerPass * MergeTraits::kThreads];
  float denominators[kMergeRowsPerPass][MergeTraits::kThreads / 32];  // [row][warp]
  uint32_t warp_flags[MergeTraits::kThreads / 32];                    // bit r: row r has a flagged split
  int last;                                                           // store_split: this block merges
};

// Adds a batch of kLoads partial sums (splits first, first + step, ...) into kV accumulators in
// turn: split first + u * step goes to accumulator u % kV.
template <int kV, int kLoads>
__device__ __forceinline__ void add_batch(float4 (&acc)[4], const float4 (&v)[kLoads]) {
  static_assert(kLoads % kV == 0 && kV <= 4);
#pragma unroll
  for (int u = 0; u < kLoads; ++u) {
    float4& a = acc[u % kV];
    a.x += v[u].x;
    a.y += v[u].y;
    a.z += v[u].z;
    a.w += v[u].w;
  }
}

// The fast path of the merge for rows [first_row, first_row + n_rows) of the workspace (n_rows <=
// kMaxMergeRows; the rows of one token's GQA group are consecutive, as are their output rows, at
// out + r * hd): out = sum of the splits' partial sums / sum of their denominators. Returns a
// bitmask of the rows left unwritten because a split flagged a score outside the range.
// The summation order is fixed, whatever the number of rows merged at once: for each head dim,
// kSlots = kThreads / (hd / 4) slot sums (4 at hd 128, 8 at hd 64), slot q adding splits q, q +
// kSlots, q + 2 kSlots, ... in turn, then the slot sums added in slot order. So the merge launch
// (one row per block) and the last split block (a GQA group) give the same bits, and neither
// depends on timing. The block's threads are kSlots groups of hd / 4 lanes, one float4 of head dims
// each. A pass takes up to kMergeRowsPerPass rows and gives each P = kSlots / rows groups; a group
// keeps kSlots / P slot sums and issues kLoadsInFlight loads before adding any: one row of 32
// splits at hd 128 costs one L2 round trip, a group of 4 rows four. (The first merge walked the
// splits in three loops, four loads per round trip: 1.4-2 us more per call at batch 1 with 8 KV
// heads.) The workspace is read through L2 only (__ldcg): a last block merges what other SMs
// wrote during its own launch. Out of line: inlined into the split kernels, it made ptxas spill in
// the tensor-core kernels (8-34 bytes, sm_90, CUDA 13); it runs once per merging block.
template <typename T, int kHeadDim>
__device__ __noinline__ uint32_t merge_rows_splits(const AttentionParams<T>& p, const Workspace& ws, int64_t first_row,
                                                   int n_rows, T* out, MergeScratch& sh) {
  constexpr int kThreads = MergeTraits::kThreads;
  constexpr int kLoads = MergeTraits::kLoadsInFlight;
  constexpr int kLanes = kHeadDim / 4;       // threads per group: a float4 of head dims each
  constexpr int kSlots = kThreads / kLanes;  // slot sums per head dim
  static_assert(kThreads % kLanes == 0 && kThreads % 32 == 0 && kSlots % kMergeRowsPerPass == 0);
  const int splits = p.plan.num_splits;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group_id = threadIdx.x / kLanes, lane4 = threadIdx.x % kLanes;
  uint32_t flagged_rows = 0;
  for (int r0 = 0; r0 < n_rows; r0 += kMergeRowsPerPass) {
    const int rows = min(n_rows - r0, kMergeRowsPerPass);
    int per_row = kSlots / rows;  // P, rounded down to a power of two so that it divides kSlots
    while (per_row & (per_row - 1)) per_row &= per_row - 1;
    const int r = group_id % rows, first_slot = group_id / rows;  // slots first_slot, first_slot + P, ...
    const int kept = kSlots / per_row;                             // slot sums this group keeps
    if (first_slot < per_row) {
      float4 acc[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      // ws.acc rows are [splits, hd] fp32: 16-byte aligned since hd % 4 == 0.
      const float4* row_acc = reinterpret_cast<const float4*>(ws.acc + (first_row + r0 + r) * splits * kHeadDim) + lane4;
      for (int first = first_slot; first < splits; first += per_row * kLoads) {
        float4 v[kLoads];
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
          const int s = first + u * per_row;
          v[u] = s < splits ? __ldcg(row_acc + int64_t{s} * kLanes) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        if (kept == 1) add_batch<1>(acc, v);
        else if (kept == 2) add_batch<2>(acc, v);
        else add_batch<4>(acc, v);
      }
      // Slot first_slot + j * P is this group's sum j.
      for (int j = 0; j < kept; ++j) sh.parts[(r * kSlots + first_slot + j * per_row) * kLanes + lane4] = acc[j];
    }
    uint32_t flags = 0;
    for (int rr = 0; rr < rows; ++rr) {
      const int64_t row = first_row + r0 + rr;
      float denominator = 0.0f;
      for (int s = threadIdx.x; s < splits; s += kThreads) {
        flags |= __ldcg(ws.flags + row * splits + s) != 0 ? 1u << rr : 0u;
        denominator += __ldcg(ws.sum + row * splits + s);
      }
      for (int off = 16; off > 0; off >>= 1) denominator += __shfl_xor_sync(0xffffffffu, denominator, off);
      if (lane == 0) sh.denominators[rr][warp] = denominator;
    }
    flags = __reduce_or_sync(0xffffffffu, flags);
    if (lane == 0) sh.warp_flags[warp] = flags;
    __syncthreads();
    uint32_t flagged = 0;
#pragma unroll
    for (int w = 0; w < kThreads / 32; ++w) flagged |= sh.warp_flags[w];
    const float* slot_sums = reinterpret_cast<const float*>(sh.parts);  // [row][slot][hd]
    for (int i = threadIdx.x; i < rows * kHeadDim; i += kThreads) {
      const int rr = i / kHeadDim, d = i % kHeadDim;
      if ((flagged >> rr) & 1u) continue;
      float total = 0.0f;
#pragma unroll
      for (int w = 0; w < kThreads / 32; ++w) total += sh.denominators[rr][w];
      float sum = 0.0f;
#pragma unroll
      for (int q = 0; q < kSlots; ++q) sum += slot_sums[(rr * kSlots + q) * kHeadDim + d];
      out[(r0 + rr) * kHeadDim + d] = from_float<T>(sum * (1.0f / total));
    }
    flagged_rows |= flagged << r0;
    __syncthreads();  // the scratch is free for the next pass (or the caller)
  }
  return flagged_rows;
}

// Whether this block is the last split of its (launch row, KV head) to finish, so that it merges
// the splits (plan.fused_merge). Every thread's partials are fenced before thread 0 counts the
// block in; the last one returns the count to zero for the next launch and fences again before
// the merge reads the other blocks' partials.
template <typename T>
__device__ bool arrived_last(const AttentionParams<T>& p, int64_t z, int kv_head, MergeScratch& sh) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t* count = p.split_counters + z * p.kv.num_kv_heads + kv_head;
    sh.last = atomicAdd(count, 1) == p.plan.num_splits - 1;
    if (sh.last) atomicExch(count, 0);
  }
  __syncthreads();
  const bool last = sh.last;
  if (last) __threadfence();
  return last;
}

// After every warp has filled its slice of `sp` (and a __syncthreads): sums over warps and writes
// the split's partial numerators, denominators and range flags for the group's query heads of
// launch row z. With one split per row the block finishes the rows itself (one division); with
// plan.fused_merge the last split block of the row merges the group's rows (merge_rows_splits),
// and launch_attention skips the merge launch in both cases. Rows with a flagged score are then
// recomputed here with the online softmax.
template <typename T, int kGroup, int kHeadDim>
__device__ void store_split(const AttentionParams<T>& p, const SplitPartials<kGroup, kHeadDim>& sp, int64_t z,
                            int kv_head, int group, int split, MergeScratch& scratch) {
  static_assert(SplitKvTraits::kThreads == MergeTraits::kThreads, "the merge and the fallback run on the split's block");
  const int64_t t = p.token_of(z);
  uint32_t fallback = 0;  // bit g: the group's row g is recomputed (block-uniform)
  if (p.plan.num_splits == 1) {  // the whole row in one block: finish it here, no merge launch
    if (sp.out_of_range) {
      fallback = (1u << group) - 1u;
    } else {
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
  } else {
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
    if (!p.plan.fused_merge || !arrived_last(p, z, kv_head, scratch)) return;
    const int64_t first = t * p.num_q_heads + kv_head * group;
    fallback = merge_rows_splits<T, kHeadDim>(p, ws, z * p.num_q_heads + kv_head * group, group,
                                              p.out + first * kHeadDim, scratch);
  }
  if (fallback == 0) return;
  if (threadIdx.x == 0 && p.fallback_rows != nullptr)
    atomicAdd(p.fallback_rows, static_cast<unsigned long long>(__popc(fallback)));
  for (int g = 0; g < group; ++g)
    if ((fallback >> g) & 1u) online_softmax_row<T, false>(p, z, kv_head * group + g);
}

}  // namespace fdpp::cuda::detail
