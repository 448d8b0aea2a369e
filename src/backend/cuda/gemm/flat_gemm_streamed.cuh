// The streamed flat GEMM (flat_gemm.cu's header), M <= kFlatGemmStreamedMaxM: weights go from
// HBM straight into mma.sync A fragments, each warp stages its own x slices in shared memory
// (cp.async through L1, one step ahead), and the loop has no block barrier. Device code, included
// by flat_gemm.cu only.
//
// The K permutation. mma.m16n8k16 wants lane (g = lane / 4, q = lane % 4) to hold A[g][2q, 2q+1],
// A[g+8][2q, 2q+1], A[g][2q+8, 2q+9], A[g+8][2q+8, 2q+9] and B[2q, 2q+1][g], B[2q+8, 2q+9][g]:
// four bytes per row per 16 k, too small a load. But a dot product does not care in which order
// its k terms come, as long as A and B agree. So within each 32-element chunk of K, lane q loads
// the 8 elements [8q, 8q + 8) of weight rows g and g + 8 (two 16-byte loads) and of token g's x
// row, and the chunk is two mmas: mma h (0, 1) takes elements 4h, 4h + 1 as the fragment's
// "2q, 2q+1" and 4h + 2, 4h + 3 as its "2q+8, 2q+9", for A and B alike. Every 16-element mma
// still sums 16 distinct k terms, each weight element meets its own x element, and the four lanes
// of a row read 64 contiguous bytes per load.
//
// Dataflow. CTA b owns weight rows [16b, 16b + 16) (one mma row tile) and every token (n-tiles of
// 8); its 4 warps split K: a CTA step is 512 elements, warp w takes elements [128w, 128w + 128)
// of it as 4 chunks, so the CTA reads 1 KB contiguous of each of its rows per step (the access
// pattern is what moved this kernel from 77% to the GEMV's rate: flat_gemm_traits.h). The next
// step's 8 loads per thread are issued before this step's mmas (two register buffers, the loop
// unrolled by two so both stay in registers; the deep ring, on grids with room for it, holds three
// buffers and requests two steps ahead); the warp's x slice of the next step, [tokens][128], is
// copied to its shared-memory stage by cp.async meanwhile. Loading x straight into registers
// (L1 hits, but 8 lines per load and a round trip per step) held M = 16 to 70-80%. At the end the warps' fp32 tiles [16 rows x tokens]
// meet in shared memory (with the norm prologue, the per-token sums of squares too) and 128
// threads finish 2 outputs each: sum the 4 warps in a fixed order, 1/rms, bias, residual (or,
// gated, silu(gate) * up of an interleaved row pair), one rounding, store. No atomics, one launch.
//
// Split K (a row block too short to keep its SM streaming: N = 4096 gives 256 CTAs for 528
// resident slots). The `splits` CTAs of a row block form one thread-block cluster along x; CTA s
// walks the s-th of `splits` near-equal ranges of K steps, sums its warps into a CTA partial
// [tokens][16 rows] (+ per-token sums of squares), and CTAs s > 0 store theirs into CTA 0's shared
// memory with st.async and leave; CTA 0 waits on an mbarrier for their bytes, adds the ranks in
// rank order and finishes every token. With splits = 1 (no cluster) the end is the warps' sum
// alone.
#pragma once

#include <type_traits>

#include "backend/cuda/cluster.cuh"
#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/gemm/flat_gemm.cuh"
#include "backend/cuda/gemm/flat_gemm_traits.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ptx.cuh"

namespace fdpp::cuda::flat_gemm_detail {

using Traits = FlatGemmTraits;

static_assert(kFlatGemmStreamedMaxM == 8 * Traits::kStreamedMaxMTiles, "flat_gemm.cuh and the traits disagree");

// 16 bytes of weights: read once, so no L1 allocation (L1 is x's); the 64-byte pieces of a row
// that four lanes read arrive from HBM in whole 256-byte runs (a warp reads 256 contiguous bytes
// of each row per step).
__device__ __forceinline__ uint4 load_weights_16(const void* p) { return detail::load_stream_16(p); }

// Row `r` (0..15) of row tile `tile` under the QKV epilogue: the tile holds 8 rotation pairs of
// one head, rows i0..i0 + 7 then i0 + hd/2..i0 + hd/2 + 7 (hd % 16 == 0, checked on the host).
template <typename T>
__device__ __forceinline__ int64_t rope_tile_row(const RopeStore<T>& s, int tile, int r) {
  const int half = s.head_dim / 2, tiles_per_head = half / 8;
  const int head = tile / tiles_per_head, i0 = (tile % tiles_per_head) * 8;
  return int64_t{head} * s.head_dim + i0 + (r / 8) * half + r % 8;
}

// Register i (0..3) of a 16-byte vector: elements 2i and 2i + 1.
template <int I>
__device__ __forceinline__ uint32_t word(const uint4& v) {
  static_assert(I >= 0 && I < 4, "four 32-bit words");
  return I == 0 ? v.x : I == 1 ? v.y : I == 2 ? v.z : v.w;
}

// The RMSNorm prologue's scaling of 8 elements of x by the norm weight, as packed pairs: the
// product of two fp16 (or bf16) values is exact in fp32, so the packed multiply's one rounding
// gives the same bits as fp32 math rounded to T (the unfused path rounds rmsnorm(x) * g too).
template <typename T>
__device__ __forceinline__ uint4 scale_by(const uint4& x, const uint4& g) {
  using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
  uint4 r;
  const T2* xs = reinterpret_cast<const T2*>(&x);
  const T2* gs = reinterpret_cast<const T2*>(&g);
  T2* rs = reinterpret_cast<T2*>(&r);
#pragma unroll
  for (int i = 0; i < 4; ++i) rs[i] = __hmul2(xs[i], gs[i]);
  return r;
}

// Shared memory of the end: per warp, the fp32 tile [tokens][16 rows] (+1 float of padding per
// token row) and the per-token sums of squares.
// Behind them, per warp, kXStages buffers of its x slice [tokens][128 elements] (256-byte rows;
// 16-byte slot s of token t stored at s ^ 4 (t & 1), so the 8 lanes of an ld.shared phase, two
// tokens x 4 slots, hit 8 different bank groups).
template <int MT>
struct StreamedSmem {
  static constexpr int kTokens = MT * 8;
  static constexpr int kRowStride = Traits::kStreamedRows + 1;
  static constexpr int kTileFloats = kTokens * kRowStride;
  static constexpr int kEndBytes = Traits::kWarps * (kTileFloats + kTokens) * 4;
  static constexpr int kXRowBytes = Traits::kStreamedChunks * 32 * 2;
  static constexpr int kXSlots = kXRowBytes / 16;
  static constexpr int kXStageBytes = kTokens * kXRowBytes;
  static constexpr int kXStages = 2;
  static constexpr int kBytes = kEndBytes + Traits::kWarps * kXStages * kXStageBytes;
  // Split K: a CTA's partial [kTokens][kStreamedRows] and sums of squares [kTokens]. Rank 0's own
  // goes over its x stages once its main loop is done; rank s > 0 writes its into rank 0's receive
  // slot s - 1, behind the x stages (kBytes), whenever it finishes, so the slots are never the x
  // stages; an mbarrier after the slots counts the ranks in.
  static constexpr int kPartFloats = kTokens * Traits::kStreamedRows + kTokens;
  static constexpr int kPartBytes = kPartFloats * 4;
  static_assert(kPartBytes <= Traits::kWarps * kXStages * kXStageBytes, "the partial fits in the x stages");
  static_assert(kBytes % 8 == 0 && kPartBytes % 8 == 0, "the mbarrier after the receive slots is 8-byte aligned");
  static constexpr int bytes_for(int splits) { return splits > 1 ? kBytes + (splits - 1) * kPartBytes + 8 : kBytes; }
  static_assert(kXSlots == 16, "the swizzle flips bit 2 of a 16-slot row");
  static_assert((kTokens * kXSlots) % 32 == 0, "whole cp.async passes per lane");
};

// The norm the kernel applies: none, rmsnorm(x) * g (x scaled by g as it is staged, 1/rms at the
// end), or the row scale alone (g folded into w: no weight loads, no scaling of x).
enum StreamedNorm : int { kNoNorm = 0, kWeightedNorm = 1, kScaleOnlyNorm = 2 };

// Grid (splits, ceil(N / kStreamedRows)), clusters of (splits, 1, 1) when splits > 1 (kSplit;
// a kSplit variant also runs right with one split, kSplit = false only with one),
// Traits::kThreads threads, StreamedSmem<MT>::bytes_for(splits) of dynamic shared memory. m_tiles =
// ceil(M / 8) <= MT; k_steps = ceil(K / kStreamedKStep) over all splits.
// kRope: the QKV epilogue (p.rope set; its own variants, so that the others keep their registers).
// kBuffers: steps of weights a warp holds in registers, the one computed and kBuffers - 1 in
// flight (2, or Traits::kStreamedDeepBuffers for grids of at most kStreamedDeepMinCtasPerSm CTAs
// per SM, whose register limit leaves room for the third).
template <typename T, int MT, int kNorm, bool kSplit, bool kRope, int kBuffers = 2>
__global__ void __launch_bounds__(Traits::kThreads, kBuffers > 2 ? Traits::kStreamedDeepMinCtasPerSm
                                                                 : Traits::kStreamedMinCtasPerSm)
flat_gemm_streamed_kernel(const FlatGemmParams<T> p, const int m_tiles, const int k_steps) {
  constexpr int kChunks = Traits::kStreamedChunks;
  constexpr int kRows = Traits::kStreamedRows;
  static_assert(kRows == 16, "one mma row tile per CTA");
  static_assert(MT <= Traits::kStreamedMaxMTiles, "the register budget (flat_gemm_traits.h)");
  static_assert(kBuffers == 2 || kBuffers == Traits::kStreamedDeepBuffers, "two buffers or the deep ring");
  static_assert(Traits::kThreads == 2 * kRows * 4, "the end gives each thread one row and 2 of 16 tokens");
  using Smem = StreamedSmem<MT>;
  extern __shared__ __align__(128) unsigned char smem[];

  const int64_t N = p.N, K = p.K;
  const int M = static_cast<int>(p.M);
  const int64_t n0 = int64_t{blockIdx.y} * kRows;
  // This CTA's steps of K: [step_begin, step_end), the split-th of gridDim.x near-equal ranges.
  // Only kSplit variants compute a range: the bounds cost the norm variants 2-3 registers, which
  // ptxas then spills (sm_90, CUDA 13), so grids of one split keep the parameters as bounds.
  const int split = kSplit ? static_cast<int>(blockIdx.x) : 0, splits = kSplit ? static_cast<int>(gridDim.x) : 1;
  const int step_begin = kSplit ? static_cast<int>(int64_t{split} * k_steps / splits) : 0;
  const int step_end = kSplit ? static_cast<int>(int64_t{split + 1} * k_steps / splits) : k_steps;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, q = lane % 4;
  // This lane's first element: warp w's quarter of the step, lane q's 8 elements of chunk 0.
  const int lane_k = warp * kChunks * 32 + q * 8;

  // Weight rows g and g + 8; rows past N (last CTA) re-read row N - 1, never stored. With the QKV
  // epilogue (p.rope) the tile's rows are 8 rotation pairs of one head instead (rope_tile_row).
  constexpr bool rope = kRope;
  const T* wrow[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    int64_t row = n0 + h * 8 + g;
    if constexpr (kRope) row = rope_tile_row(p.rope, blockIdx.y, h * 8 + g);
    wrow[h] = p.w + (row < N ? row : N - 1) * K + lane_k;
  }
  const uint4 zero = make_uint4(0, 0, 0, 0);
  // This warp's x staging buffers; x slices arrive by cp.async one step ahead of their use, so
  // their latency overlaps the weight stream instead of stalling each step.
  unsigned char* const x_stage = smem + Smem::kEndBytes + warp * Smem::kXStages * Smem::kXStageBytes;
  auto stage_x = [&](int step, int buf) {
    const int64_t k0 = int64_t{step} * Traits::kStreamedKStep + warp * kChunks * 32;
#pragma unroll
    for (int i = 0; i < Smem::kTokens * Smem::kXSlots / 32; ++i) {
      const int idx = lane + 32 * i, token = idx / Smem::kXSlots, slot = idx % Smem::kXSlots;
      const int64_t k = k0 + slot * 8;
      const bool ok = token < M && k < K;  // tokens past M and chunks past K are zeros
      const uint32_t dst = detail::smem_u32(x_stage + buf * Smem::kXStageBytes + token * Smem::kXRowBytes +
                                            ((slot ^ ((token & 1) * 4)) * 16));
      detail::cp_async_16_ca(dst, ok ? p.x + int64_t{token} * K + k : p.x, ok);
    }
  };
  // The 16 bytes lane (g, q) reads from a stage for chunk c of n-tile j: token 8j + g, slot 4c + q.
  auto x_piece = [&](int buf, int c, int j) {
    const int token = j * 8 + g;
    return *reinterpret_cast<const uint4*>(x_stage + buf * Smem::kXStageBytes + token * Smem::kXRowBytes +
                                           (((c * 4 + q) ^ ((g & 1) * 4)) * 16));
  };

  float acc[MT][4];
#pragma unroll
  for (int j = 0; j < MT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = 0.0f;
  // kNorm: the sums of squares on the tensor cores, as x . x^T with x's tokens g, g + 8 as the A
  // tile and n-tile j as B: token t's sum is the diagonal element (t, t) of gram[t / 8]. Converting
  // every x element on CUDA cores instead made the norm variant 35% slower than the plain one.
  float gram[MT][4];
#pragma unroll
  for (int j = 0; j < MT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) gram[j][e] = 0.0f;

  // Whether n-tile j holds tokens (warp-uniform). The deep ring's plans always fill their MT
  // n-tiles (M 1-8 at one, 9-16 at two), and a constant saves it registers it does not have.
  auto live = [&](int j) { return kBuffers > 2 || j < m_tiles; };
  // w[h][c]: row g (h = 0) or g + 8 (h = 1), chunk c. A chunk past K (K % 8 == 0: wholly in or
  // out) is zeros in w and in x.
  auto load = [&](uint4 (&w)[2][kChunks], int step) {
    const int64_t k0 = int64_t{step} * Traits::kStreamedKStep;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const bool ok = k0 + lane_k + c * 32 < K;
#pragma unroll
      for (int h = 0; h < 2; ++h) w[h][c] = ok ? load_weights_16(wrow[h] + k0 + c * 32) : zero;
    }
  };
  auto compute = [&](const uint4 (&w)[2][kChunks], int step, int buf) {
    const int64_t k0 = int64_t{step} * Traits::kStreamedKStep;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      uint4 xv[MT];
      uint4 gv = zero;
      if constexpr (kNorm == kWeightedNorm) {
        const int64_t k = k0 + c * 32 + lane_k;
        gv = k < K ? __ldg(reinterpret_cast<const uint4*>(p.norm_weight + k)) : zero;
      }
#pragma unroll
      for (int j = 0; j < MT; ++j) xv[j] = live(j) ? x_piece(buf, c, j) : zero;
      if constexpr (kNorm != kNoNorm) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint4& lo = xv[0];                      // tokens g
          const uint4& hi = MT > 1 ? xv[MT - 1] : zero;  // tokens 8 + g
          const uint32_t a[4] = {h == 0 ? word<0>(lo) : word<2>(lo), h == 0 ? word<0>(hi) : word<2>(hi),
                                 h == 0 ? word<1>(lo) : word<3>(lo), h == 0 ? word<1>(hi) : word<3>(hi)};
#pragma unroll
          for (int j = 0; j < MT; ++j) {
            if (live(j)) {
              const uint32_t b0 = h == 0 ? word<0>(xv[j]) : word<2>(xv[j]);
              const uint32_t b1 = h == 0 ? word<1>(xv[j]) : word<3>(xv[j]);
              detail::mma_16816(gram[j], a, b0, b1, T{});
            }
          }
        }
        if constexpr (kNorm == kWeightedNorm) {
#pragma unroll
          for (int j = 0; j < MT; ++j) xv[j] = scale_by<T>(xv[j], gv);
        }
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint4& lo = w[0][c];  // row g
        const uint4& hi = w[1][c];  // row g + 8
        const uint32_t a[4] = {h == 0 ? word<0>(lo) : word<2>(lo), h == 0 ? word<0>(hi) : word<2>(hi),
                               h == 0 ? word<1>(lo) : word<3>(lo), h == 0 ? word<1>(hi) : word<3>(hi)};
#pragma unroll
        for (int j = 0; j < MT; ++j) {
          if (live(j)) {  // warp-uniform
            const uint32_t b0 = h == 0 ? word<0>(xv[j]) : word<2>(xv[j]);
            const uint32_t b1 = h == 0 ? word<1>(xv[j]) : word<3>(xv[j]);
            detail::mma_16816(acc[j], a, b0, b1, T{});
          }
        }
      }
    }
  };

  // The i-th step of the range computes weights from register buffer i % kBuffers and x from
  // stage i % 2; before it, the weights of step i + kBuffers - 1 and the x of step i + 1 are
  // requested into the buffer and stage they free. Every step commits one cp.async group (empty
  // past the end), so wait_group 1 means "this step's x landed". The loop below is unrolled so
  // that every buffer stays in registers.
  auto run_step = [&](uint4 (&cur)[2][kChunks], uint4 (&ahead)[2][kChunks], int step, int buf) {
    if (step + kBuffers - 1 < step_end) load(ahead, step + kBuffers - 1);
    if (step + 1 < step_end) stage_x(step + 1, 1 - buf);
    detail::cp_async_commit();
    detail::cp_async_wait<1>();
    __syncwarp();
    compute(cur, step, buf);
    __syncwarp();  // every lane is done with this stage before it is refilled
  };
  // Split K: rank 0's mbarrier counts the other ranks' partial bytes in; initialised before the
  // first half of the cluster barrier, whose second half each rank passes before it stores.
  uint32_t recv_bar = 0;
  if constexpr (kSplit) {
    recv_bar = detail::smem_u32(smem + Smem::kBytes + (splits - 1) * Smem::kPartBytes);
    if (split == 0 && tid == 0 && splits > 1) {  // one arrival (its own) and every slot's bytes
      detail::mbarrier_init(recv_bar, 1);
      detail::fence_mbarrier_init();
      detail::mbarrier_arrive_expect_tx(recv_bar, static_cast<uint32_t>((splits - 1) * Smem::kPartBytes));
    }
    detail::cluster_arrive();
  }
  uint4 w[kBuffers][2][kChunks];
  // The first kBuffers - 1 steps' weights go out before the wait for the previous kernel
  // (launch.cuh): weights are constant, so they overlap that kernel's tail; x and the output wait.
#pragma unroll
  for (int b = 0; b + 1 < kBuffers; ++b)
    if (step_begin + b < step_end) load(w[b], step_begin + b);
  enter_dependent_grid();
  if (step_begin < step_end) stage_x(step_begin, 0);
  detail::cp_async_commit();
  // Unrolled over a whole number of both cycles (weight buffers and the 2 x stages), so that each
  // buffer and stage index is a constant.
  constexpr int kUnroll = kBuffers % 2 == 0 ? kBuffers : 2 * kBuffers;
  for (int s = step_begin; s < step_end; s += kUnroll) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (u == 0 || s + u < step_end) run_step(w[u % kBuffers], w[(u + kBuffers - 1) % kBuffers], s + u, u % 2);
  }
  detail::cp_async_wait_all();

  // Warp w's tile: accumulator element e of lane (g, q), n-tile j, is row g (+ 8 for e >= 2) and
  // token 8j + 2q (+ 1 for odd e).
  float* tile = reinterpret_cast<float*>(smem) + warp * Smem::kTileFloats;
  float* warp_sum_sq = reinterpret_cast<float*>(smem) + Traits::kWarps * Smem::kTileFloats + warp * Smem::kTokens;
#pragma unroll
  for (int j = 0; j < MT; ++j) {
    const int token = j * 8 + 2 * q;
    tile[token * Smem::kRowStride + g] = acc[j][0];
    tile[(token + 1) * Smem::kRowStride + g] = acc[j][1];
    tile[token * Smem::kRowStride + g + 8] = acc[j][2];
    tile[(token + 1) * Smem::kRowStride + g + 8] = acc[j][3];
    if constexpr (kNorm != kNoNorm) {
      // Diagonal (t, t) of gram[j], t = 8j + g: lane (g, q = g / 2), column 2q + (g % 2) of row g
      // (top half, n-tile 0) or row g + 8 (bottom half, n-tile 1). With the same K slice in
      // every lane, each warp's sum covers its quarter of K; the end adds the warps.
      if (q == g / 2) {
        const int e = (j == 0 ? 0 : 2) + g % 2;
        warp_sum_sq[j * 8 + g] = e == 0 ? gram[j][0] : e == 1 ? gram[j][1] : e == 2 ? gram[j][2] : gram[j][3];
      }
    }
  }
  __syncthreads();

  // Thread tid finishes row n0 + tid % 16 for tokens tid / 16 and tid / 16 + 8. The gated
  // epilogue pairs rows r and r + 1 (r even: 16-row blocks never split a pair): the even row's
  // thread finishes both and stores one value, the odd row's stores nothing. The QKV epilogue
  // pairs tile rows r and r + 8 (i and i + hd / 2 of one head) the same way.
  const int r = tid % kRows;
  int64_t n = n0 + r;
  if constexpr (kRope) n = rope_tile_row(p.rope, blockIdx.y, r);
  const int partner = rope ? 8 : 1;  // the tile row paired with r, when one is
  const bool paired = p.gated_silu || rope;
  const bool stores = n < N && (rope ? r < 8 : !p.gated_silu || r % 2 == 0);
  const float* tiles = reinterpret_cast<const float*>(smem);
  const float* sums_sq = tiles + Traits::kWarps * Smem::kTileFloats;
  // Token m's value of row `row` summed over the warps in a fixed order (deterministic), and its
  // sum of squares.
  auto warp_sums = [&](int m, int row, float& y, float& ss) {
    y = 0.0f;
    ss = 0.0f;
#pragma unroll
    for (int w = 0; w < Traits::kWarps; ++w) {
      y += tiles[w * Smem::kTileFloats + m * Smem::kRowStride + row];
      if constexpr (kNorm != kNoNorm) ss += sums_sq[w * Smem::kTokens + m];
    }
  };
  auto bias_of = [&](int64_t row) { return p.bias != nullptr && row < N ? to_float(p.bias[row]) : 0.0f; };
  const float bias = bias_of(n);
  const float bias_up = p.gated_silu ? bias_of(n + 1) : rope ? bias_of(n + p.rope.head_dim / 2) : 0.0f;
  // y: row n's sum, up: its partner's (paired only), ss: the token's sum of squares (kNorm only).
  auto finish = [&](int m, float y, float up, float ss) {
    float scale = 1.0f;
    if constexpr (kNorm != kNoNorm) scale = rsqrtf(ss / static_cast<float>(K) + p.norm_eps);
    if constexpr (kRope) store_rope_pair(p.rope, m, n, y * scale + bias, up * scale + bias_up);
    else if (p.gated_silu) store_gated_output(p, m, n, y * scale + bias, up * scale + bias_up);
    else store_linear_output(p, int64_t{m} * N + n, y * scale + bias);
  };
  if (!kSplit) {
    if (!stores) return;
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const int m = tid / kRows + t * 8;
      if (t * 8 >= Smem::kTokens || m >= M) break;  // the one-n-tile variant has 8 token rows
      float y, ss, up = 0.0f, ss_up;
      warp_sums(m, r, y, ss);
      if (paired) warp_sums(m, r + partner, up, ss_up);
      finish(m, y, up, ss);
    }
    return;
  }

  // Split K: rank s > 0 stores its partial (summed over its warps) into rank 0's receive slot
  // s - 1 with st.async, whose bytes complete on rank 0's mbarrier, and exits at once: no fence,
  // no barrier, no arrival. Rank 0 waits for the bytes, adds the ranks in rank order
  // (deterministic) and finishes every token. Two cluster-wide barriers with every rank reading
  // the others spent ~2 us of a 14 us [4096, 4096] launch back to back; a fence, a barrier and a
  // remote arrival in each writer still ~0.8 us (H100, docs/PERF.md sessions 14 and 15).
  // [kTokens][kRows] partial sums, then [kTokens] sums of squares: rank 0's own over its x stages,
  // the others' in rank 0's receive slots (behind the x stages).
  float* part = reinterpret_cast<float*>(smem + Smem::kEndBytes);
  const float* recv = reinterpret_cast<const float*>(smem + Smem::kBytes);
  detail::cluster_wait();  // rank 0's mbarrier is initialised
  const uint32_t slot = split > 0 ? detail::cluster_smem_address(detail::smem_u32(smem + Smem::kBytes) +
                                                                     (split - 1) * Smem::kPartBytes, 0)
                                  : 0u;
  const uint32_t remote_bar = split > 0 ? detail::cluster_smem_address(recv_bar, 0) : 0u;
  auto put = [&](int index, float value) {
    if (split == 0) part[index] = value;
    else detail::store_async_remote(slot + 4u * static_cast<uint32_t>(index), value, remote_bar);
  };
#pragma unroll
  for (int t = 0; t < 2; ++t) {
    const int m = tid / kRows + t * 8;
    if (t * 8 >= Smem::kTokens) break;
    float y = 0.0f, ss = 0.0f;
    if (m < M) warp_sums(m, r, y, ss);
    put(m * kRows + r, y);
    if (r == 0) put(Smem::kTokens * kRows + m, ss);
  }
  if (split > 0) return;
  __syncthreads();
  if (splits > 1) detail::mbarrier_wait_parity<true>(recv_bar, 0);
  if (!stores) return;
#pragma unroll
  for (int t = 0; t < 2; ++t) {
    const int m = tid / kRows + t * 8;
    if (t * 8 >= Smem::kTokens || m >= M) break;
    float y = 0.0f, up = 0.0f, ss = 0.0f;
    for (int rank = 0; rank < splits; ++rank) {
      const float* from = rank == 0 ? part : recv + (rank - 1) * Smem::kPartFloats;
      y += from[m * kRows + r];
      if (paired) up += from[m * kRows + r + partner];
      if constexpr (kNorm != kNoNorm) ss += from[Smem::kTokens * kRows + m];
    }
    finish(m, y, up, ss);
  }
}

}  // namespace fdpp::cuda::flat_gemm_detail
