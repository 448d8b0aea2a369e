// Prefill attention on tensor cores. Internal to attention.cu: the asynchronized softmax of the
// decode kernels, with 16 query tokens in the m16 rows instead of a GQA group's heads.
//
// Grid (ceil(Hq / 4), tiles), 4 warps; warp w takes query head 4*blockIdx.x + w for one tile of up
// to 16 consecutive tokens of one sequence, and walks KV positions [0, last position] 16 at a
// time: S = Q [16 tokens x hd] . K^T, causal mask per row, P = e^(s - phi) (bf16), O += P . V.
// K and V fragments come straight from global memory with the same free permutations as the
// decode kernel (attention_mma.cuh); a warp owns whole rows, so it writes its row's numerator,
// denominator and range flag as split 0 of the workspace, and the merge kernel finishes (or
// recomputes out-of-range rows with the online softmax).
#pragma once

#include "backend/cuda/attention/attention_mma.cuh"
#include "backend/cuda/attention/split_common.cuh"

namespace fdpp::cuda::detail {

__device__ __forceinline__ void mma_16816_rows(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                               uint32_t b0, uint32_t b1, __half) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_16816_rows(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                               uint32_t b0, uint32_t b1, __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(SplitKvTraits::kThreads) prefill_mma_kernel(const AttentionParams<T> p) {
  constexpr int kKSteps = kHeadDim / 16;
  constexpr int kLoads = kHeadDim / 32;
  constexpr int kChunk = kHeadDim / 8;
  constexpr int kTile = 16;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tig = lane % 4;
  const int h = blockIdx.x * SplitKvTraits::kWarps + warp;
  if (h >= p.num_q_heads) return;  // whole warp leaves; no block-wide barrier below
  const int32_t first = p.tiles[2 * blockIdx.y], count = p.tiles[2 * blockIdx.y + 1];
  const int group = p.num_q_heads / p.kv.num_kv_heads;
  const int kv_head = h / group;
  const int64_t row_elems = int64_t{p.kv.num_kv_heads} * kHeadDim;

  // This lane's two query rows: g and g + 8 of the tile.
  const bool valid_lo = g < count, valid_hi = g + 8 < count;
  const int64_t t_lo = p.token_of(first + min(g, count - 1));
  const int64_t t_hi = p.token_of(first + min(g + 8, count - 1));
  const int end_lo = valid_lo ? p.slots.positions[t_lo] + 1 : 0;
  const int end_hi = valid_hi ? p.slots.positions[t_hi] + 1 : 0;
  int end = max(end_lo, end_hi);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) end = max(end, __shfl_xor_sync(0xffffffffu, end, off));
  const int32_t* table = p.slots.block_tables +
                         int64_t{p.slots.token_seq[p.token_of(first)]} * p.slots.max_blocks_per_seq;

  uint32_t qa0[kKSteps], qa1[kKSteps], qa2[kKSteps], qa3[kKSteps];
  {
    const T* q_lo = p.q + (t_lo * p.num_q_heads + h) * kHeadDim;
    const T* q_hi = p.q + (t_hi * p.num_q_heads + h) * kHeadDim;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      const int d = 32 * (ks / 2) + 8 * tig + 4 * (ks % 2);
      qa0[ks] = valid_lo ? *reinterpret_cast<const uint32_t*>(q_lo + d) : 0u;
      qa2[ks] = valid_lo ? *reinterpret_cast<const uint32_t*>(q_lo + d + 2) : 0u;
      qa1[ks] = valid_hi ? *reinterpret_cast<const uint32_t*>(q_hi + d) : 0u;
      qa3[ks] = valid_hi ? *reinterpret_cast<const uint32_t*>(q_hi + d + 2) : 0u;
    }
  }
  const float s_scale = p.scale * kLog2e;
  const float phi2 = p.range.phi * kLog2e, lo2 = p.range.lo * kLog2e, hi2 = p.range.hi * kLog2e;
  float acc[kChunk][4] = {};  // rows g (0,1) and g+8 (2,3); column c of tile nt -> dim c*kChunk + nt
  float sum_lo = 0.0f, sum_hi = 0.0f;
  bool oor_lo = false, oor_hi = false;

  const T* k_head = p.kv.k + int64_t{kv_head} * kHeadDim;
  const T* v_head = p.kv.v + int64_t{kv_head} * kHeadDim;
  for (int base = 0; base < end; base += kTile) {
    uint4 kr[2][kLoads];
    uint4 vr[4][2];
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int pos = base + 8 * hh + g;
      const bool ok = pos < end;
      const T* row = ok ? k_head + slot_offset(table, pos, p.kv.block_size, row_elems) : nullptr;
#pragma unroll
      for (int j = 0; j < kLoads; ++j)
        kr[hh][j] = ok ? *reinterpret_cast<const uint4*>(row + 32 * j + 8 * tig) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int pos = base + (r / 2) * 8 + 2 * tig + (r % 2);
      const bool ok = pos < end;
      const T* row = ok ? v_head + slot_offset(table, pos, p.kv.block_size, row_elems) : nullptr;
#pragma unroll
      for (int j = 0; j < 2; ++j)
        vr[r][j] = (ok && j * 8 < kChunk) ? *reinterpret_cast<const uint4*>(row + g * kChunk + 8 * j)
                                          : make_uint4(0, 0, 0, 0);
    }
    float s[2][4] = {};
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks) {
        const uint32_t* w = reinterpret_cast<const uint32_t*>(&kr[hh][ks / 2]);
        mma_16816_rows(s[hh], qa0[ks], qa1[ks], qa2[ks], qa3[ks], w[2 * (ks % 2)], w[2 * (ks % 2) + 1], T{});
      }
    }
    // e for (n-tile hh, row lo/hi, column c): position base + 8*hh + 2*tig + c.
    float e[2][2][2];
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int pos = base + 8 * hh + 2 * tig + c;
        const float s_lo = s[hh][c] * s_scale, s_hi = s[hh][2 + c] * s_scale;
        const bool live_lo = pos < end_lo, live_hi = pos < end_hi;  // causal mask per row
        oor_lo |= live_lo && ((s_lo < lo2) | (s_lo > hi2));
        oor_hi |= live_hi && ((s_hi < lo2) | (s_hi > hi2));
        e[hh][0][c] = live_lo ? exp2f(s_lo - phi2) : 0.0f;
        e[hh][1][c] = live_hi ? exp2f(s_hi - phi2) : 0.0f;
      }
    }
    const uint32_t pa0 = pack_bf16(e[0][0][0], e[0][0][1]);  // row g, positions 2tig+{0,1}
    const uint32_t pa1 = pack_bf16(e[0][1][0], e[0][1][1]);  // row g+8
    const uint32_t pa2 = pack_bf16(e[1][0][0], e[1][0][1]);  // row g, positions 8+2tig+{0,1}
    const uint32_t pa3 = pack_bf16(e[1][1][0], e[1][1][1]);  // row g+8
    // Denominators from the same rounded weights the numerators use.
    {
      const __nv_bfloat162 p0 = *reinterpret_cast<const __nv_bfloat162*>(&pa0);
      const __nv_bfloat162 p1 = *reinterpret_cast<const __nv_bfloat162*>(&pa1);
      const __nv_bfloat162 p2 = *reinterpret_cast<const __nv_bfloat162*>(&pa2);
      const __nv_bfloat162 p3 = *reinterpret_cast<const __nv_bfloat162*>(&pa3);
      sum_lo += __low2float(p0) + __high2float(p0) + __low2float(p2) + __high2float(p2);
      sum_hi += __low2float(p1) + __high2float(p1) + __low2float(p3) + __high2float(p3);
    }
#pragma unroll
    for (int nt = 0; nt < kChunk; ++nt) {
      uint32_t b0, b1, b0_low = 0, b1_low = 0;
      pack_v<T>(vr[0], vr[1], nt, b0, b0_low);
      pack_v<T>(vr[2], vr[3], nt, b1, b1_low);
      mma_16816_rows(acc[nt], pa0, pa1, pa2, pa3, b0, b1, __nv_bfloat16{});
      if constexpr (!std::is_same_v<T, __nv_bfloat16>)
        mma_16816_rows(acc[nt], pa0, pa1, pa2, pa3, b0_low, b1_low, __nv_bfloat16{});
    }
  }

  // The four lanes of a row (tig) hold different positions: combine them.
#pragma unroll
  for (int off = 1; off <= 2; off <<= 1) {
    sum_lo += __shfl_xor_sync(0xffffffffu, sum_lo, off);
    sum_hi += __shfl_xor_sync(0xffffffffu, sum_hi, off);
    oor_lo |= __shfl_xor_sync(0xffffffffu, oor_lo, off);
    oor_hi |= __shfl_xor_sync(0xffffffffu, oor_hi, off);
  }
  const Workspace ws = carve(p.workspace, p.row_count(), p.num_q_heads, 1, kHeadDim);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    if (!(half == 0 ? valid_lo : valid_hi)) continue;
    const int64_t row = int64_t{first + g + 8 * half} * p.num_q_heads + h;
#pragma unroll
    for (int nt = 0; nt < kChunk; ++nt) {
      ws.acc[row * kHeadDim + (2 * tig) * kChunk + nt] = acc[nt][2 * half];
      ws.acc[row * kHeadDim + (2 * tig + 1) * kChunk + nt] = acc[nt][2 * half + 1];
    }
    if (tig == 0) {
      ws.sum[row] = half == 0 ? sum_lo : sum_hi;
      ws.flags[row] = (half == 0 ? oor_lo : oor_hi) ? 1 : 0;
    }
  }
}

}  // namespace fdpp::cuda::detail
