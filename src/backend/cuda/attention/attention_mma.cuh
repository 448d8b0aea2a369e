// Split-KV attention for grouped-query heads on tensor cores (mma.sync m16n8k16, fp32 accumulate).
// Internal to attention.cu: the same Params, workspace layout and asynchronized softmax as the
// CUDA-core kernel there, for GQA groups of 3..8 query heads, where CUDA cores would need about
// 8 multiply-adds per KV byte (more than they can issue at full HBM bandwidth).
//
// A warp takes 16 positions at a time:  S [16 x 16] = Q [16 heads (padded) x hd] . K^T, then
// O [16 x hd] += P [16 x 16] . V [16 x hd]. Two free permutations keep every load 16 bytes wide and
// coalesced, with no shared memory: the hd reduction order of Q.K^T (Q and K fragments agree on
// it), and the order of output dims (undone when the accumulators are stored). P is bf16 for both
// activation dtypes: e^(s - phi) may exceed fp16's range, and bf16 has fp32's exponent; fp16 V
// enters as an exact pair of bf16 parts.
#pragma once

#include <type_traits>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/attention/attention_traits.h"
#include "backend/cuda/attention/split_common.cuh"
#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/launch.cuh"

namespace fdpp::cuda::detail {

__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a2, uint32_t b0, uint32_t b1,
                                          __half) {
  // A rows 8..15 are padding (groups have at most 8 heads): their registers are zero.
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a2, uint32_t b0, uint32_t b1,
                                          __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Element i (0..kHeadDim/8-1) of a lane's V chunk of row r, as float.
template <typename T>
__device__ __forceinline__ float chunk_elem(const uint4 (&chunk)[2], int i) {
  const T* e = reinterpret_cast<const T*>(&chunk[i / 8]);
  return to_float(e[i % 8]);
}

// B fragments of P.V for element i of two V rows: (V[r0][i], V[r1][i]) as bf16 pairs. bf16 V is
// exact in `high`. An fp16 value has 3 more mantissa bits than bf16: it is split exactly into
// high + low (both bf16), so P.V loses nothing to V's conversion.
template <typename T>
__device__ __forceinline__ void pack_v(const uint4 (&r0)[2], const uint4 (&r1)[2], int i, uint32_t& high,
                                       uint32_t& low) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const uint32_t w0 = reinterpret_cast<const uint32_t*>(r0)[i / 2];
    const uint32_t w1 = reinterpret_cast<const uint32_t*>(r1)[i / 2];
    high = __byte_perm(w0, w1, (i % 2) ? 0x7632 : 0x5410);
  } else {
    const float a = chunk_elem<T>(r0, i), b = chunk_elem<T>(r1, i);
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    high = *reinterpret_cast<const uint32_t*>(&h);
    low = pack_bf16(a - __low2float(h), b - __high2float(h));
  }
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(SplitKvTraits::kThreads) split_kv_mma_kernel(const AttentionParams<T> p) {
  enter_dependent_grid();
  using Tr = SplitKvTraits;
  constexpr int kKSteps = kHeadDim / 16;   // k-steps of Q.K^T
  constexpr int kLoads = kHeadDim / 32;    // 16-byte K loads per row per lane
  constexpr int kChunk = kHeadDim / 8;     // dims of V per lane (and n-tiles of P.V)
  constexpr int kTile = 16;                // positions per warp iteration

  const int split = blockIdx.x, kv_head = blockIdx.y;
  const int64_t z = blockIdx.z, t = p.token_of(z);
  const int group = p.num_q_heads / p.kv.num_kv_heads;
  const int kv_len = p.slots.positions[t] + 1;
  const int begin = split * p.plan.split_size;
  const int end = min(kv_len, begin + p.plan.split_size);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tig = lane % 4;  // mma fragment coordinates
  const int64_t row_elems = int64_t{p.kv.num_kv_heads} * kHeadDim;
  const int32_t* table = p.slots.block_tables + int64_t{p.slots.token_seq[t]} * p.slots.max_blocks_per_seq;

  // Q fragments (A of Q.K^T): row g = head g of the group; k-step ks holds dims
  // 32*(ks/2) + 8*tig + 4*(ks%2) + {0,1} (a0) and {2,3} (a2): the dims a K load of 16 bytes gives.
  uint32_t qa0[kKSteps], qa2[kKSteps];
  {
    const T* q = p.q + (t * p.num_q_heads + kv_head * group + g) * kHeadDim;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      const int d = 32 * (ks / 2) + 8 * tig + 4 * (ks % 2);
      qa0[ks] = g < group ? *reinterpret_cast<const uint32_t*>(q + d) : 0u;
      qa2[ks] = g < group ? *reinterpret_cast<const uint32_t*>(q + d + 2) : 0u;
    }
  }
  const float s_scale = p.scale * kLog2e;
  const float phi2 = p.range.phi * kLog2e;
  const float lo2 = p.range.lo * kLog2e, hi2 = p.range.hi * kLog2e;
  float acc[kChunk][4] = {};  // O fragments; columns permuted: tile nt, col c -> dim c*kChunk + nt
  float sum = 0.0f;
  bool out_of_range = false;

  const T* k_head = p.kv.k + int64_t{kv_head} * kHeadDim;
  const T* v_head = p.kv.v + int64_t{kv_head} * kHeadDim;
  for (int base = begin + warp * kTile; base < end; base += kTile * Tr::kWarps) {
    // K rows base+g and base+8+g, all hd dims; V rows base+{2tig, 2tig+1, 8+2tig, 9+2tig}, dims g*kChunk...
    uint4 kr[2][kLoads];
    uint4 vr[4][2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int pos = base + 8 * h + g;
      const bool ok = pos < end;
      const T* row = ok ? k_head + slot_offset(table, pos, p.kv.block_size, row_elems) : nullptr;
#pragma unroll
      for (int j = 0; j < kLoads; ++j)
        kr[h][j] = ok ? *reinterpret_cast<const uint4*>(row + 32 * j + 8 * tig) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int pos = base + (r / 2) * 8 + 2 * tig + (r % 2);
      const bool ok = pos < end;
      const T* row = ok ? v_head + slot_offset(table, pos, p.kv.block_size, row_elems) : nullptr;
#pragma unroll
      for (int j = 0; j < 2; ++j)
        vr[r][j] = (ok && j * 8 < kChunk) ? *reinterpret_cast<const uint4*>(row + g * kChunk + 8 * j) : make_uint4(0, 0, 0, 0);
    }
    // S = Q.K^T for positions base..base+7 (h=0) and base+8..base+15 (h=1).
    float s[2][4] = {};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks) {
        const uint32_t* w = reinterpret_cast<const uint32_t*>(&kr[h][ks / 2]);
        mma_16816(s[h], qa0[ks], qa2[ks], w[2 * (ks % 2)], w[2 * (ks % 2) + 1], T{});
      }
    }
    // P = e^(s - phi): lane holds head g, positions base + 8h + 2tig + {0,1}.
    float e[2][2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int pos = base + 8 * h + 2 * tig + c;
        const float s2 = s[h][c] * s_scale;
        const bool live = pos < end && g < group;
        out_of_range |= live && ((s2 < lo2) | (s2 > hi2));
        e[h][c] = live ? exp2f(s2 - phi2) : 0.0f;
      }
    }
    const uint32_t pa0 = pack_bf16(e[0][0], e[0][1]);
    const uint32_t pa2 = pack_bf16(e[1][0], e[1][1]);
    // The denominator sums the same bf16-rounded weights the numerator uses: the result is an
    // exact weighted average of V, only the weights are rounded.
    {
      const __nv_bfloat162 p0 = *reinterpret_cast<const __nv_bfloat162*>(&pa0);
      const __nv_bfloat162 p2 = *reinterpret_cast<const __nv_bfloat162*>(&pa2);
      sum += __low2float(p0) + __high2float(p0) + __low2float(p2) + __high2float(p2);
    }
    // O += P.V: n-tile nt covers dims {c*kChunk + nt}; B rows are positions 2tig+{0,1}, 8+2tig+{0,1}.
#pragma unroll
    for (int nt = 0; nt < kChunk; ++nt) {
      uint32_t b0, b1, b0_low = 0, b1_low = 0;
      pack_v<T>(vr[0], vr[1], nt, b0, b0_low);
      pack_v<T>(vr[2], vr[3], nt, b1, b1_low);
      mma_16816(acc[nt], pa0, pa2, b0, b1, __nv_bfloat16{});
      if constexpr (!std::is_same_v<T, __nv_bfloat16>) mma_16816(acc[nt], pa0, pa2, b0_low, b1_low, __nv_bfloat16{});
    }
  }

  // Row sums: the four lanes of a row (tig) hold different positions.
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  __shared__ SplitPartials<8, kHeadDim> sp;
  if (threadIdx.x == 0) sp.out_of_range = 0;
  __syncthreads();
  if (out_of_range) sp.out_of_range = 1;
  if (g < group) {
#pragma unroll
    for (int nt = 0; nt < kChunk; ++nt) {
      sp.acc[warp][g][(2 * tig) * kChunk + nt] = acc[nt][0];
      sp.acc[warp][g][(2 * tig + 1) * kChunk + nt] = acc[nt][1];
    }
    if (tig == 0) sp.sum[warp][g] = sum;
  }
  __syncthreads();
  store_split(p, sp, z, kv_head, group, split);
}

}  // namespace fdpp::cuda::detail
