// The pipelined flat GEMM (flat_gemm.cu's header): weights and x walk K through a kStages-deep
// cp.async pipeline in shared memory, ldmatrix feeds mma.sync, and the CTAs that split K for one
// block of rows meet in a thread-block cluster. Serves every M up to kFlatGemmMaxM; the streamed
// kernel (flat_gemm_streamed.cuh) takes M <= 16. Device code, included by flat_gemm.cu only.
#pragma once

#include <cooperative_groups.h>

#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/gemm/flat_gemm.cuh"
#include "backend/cuda/gemm/flat_gemm_traits.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ptx.cuh"

namespace fdpp::cuda::flat_gemm_detail {

using detail::cp_async_16;
using detail::cp_async_commit;
using detail::cp_async_wait;
using detail::smem_u32;
using Traits = FlatGemmTraits;

using detail::cp_async_16;
using detail::cp_async_commit;
using detail::smem_u32;

static_assert(kFlatGemmMaxM == Traits::kMaxM, "flat_gemm.cuh and the traits disagree on the largest M");

// ---- the end of a CTA ----------------------------------------------------------------------
// The warps' mma accumulators go to an fp32 partial tile in shared memory, the thread-block
// cluster (the CTAs that split K for one block of weight rows) synchronises, and each CTA sums a
// share of the token rows over every rank in a fixed order through distributed shared memory,
// then applies bias and residual, rounds once and stores.

// Floats between consecutive token rows of the partial tile.
inline constexpr int kPartStride = Traits::kBlockN + Traits::kPartialPad;

// Bytes of the partial tile for MT n-tiles.
template <int MT>
inline constexpr int kPartialBytes = MT * 8 * kPartStride * 4;

// Writes the warp's accumulators acc[i][j] (row tile i of 16 weight rows, n-tile j of 8 tokens)
// into part [tokens][kPartStride], token-major. Accumulator element e of lane (g = lane / 4,
// q = lane % 4) is weight row g (+ 8 for e >= 2) and token 2q (+ 1 for odd e).
template <int kRowTiles, int MT>
__device__ __forceinline__ void store_partial_tile(float* part, const float (&acc)[kRowTiles][MT][4], int warp,
                                                   int lane, int m_tiles) {
  const int g = lane / 4, q = lane % 4;
#pragma unroll
  for (int i = 0; i < kRowTiles; ++i) {
    const int row = warp * kRowTiles * 16 + i * 16 + g;
#pragma unroll
    for (int j = 0; j < MT; ++j) {
      if (j < m_tiles) {
        const int token = j * 8 + 2 * q;
        part[token * kPartStride + row] = acc[i][j][0];
        part[(token + 1) * kPartStride + row] = acc[i][j][1];
        part[token * kPartStride + row + 8] = acc[i][j][2];
        part[(token + 1) * kPartStride + row + 8] = acc[i][j][3];
      }
    }
  }
}

// After store_partial_tile in every CTA of the cluster: CTA `split` finishes token rows split, split +
// splits, ...; thread tid takes weight row n0 + tid. Remote (distributed shared memory) loads
// take ~200 cycles: every rank's value of kReduceBatch token rows is loaded before any is added,
// so a thread waits once per batch. Ends with a cluster barrier (peers may still be reading this
// CTA's tile).
template <typename T>
__device__ __forceinline__ void cluster_reduce_store(const FlatGemmParams<T>& p, float* part, int64_t n0, int split,
                                                     int splits) {
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();  // every CTA's partial tile is written and visible to the cluster

  static_assert(Traits::kBlockN == Traits::kThreads, "one output row (feature) per thread");
  constexpr int kBatch = Traits::kReduceBatch;
  const int tid = static_cast<int>(threadIdx.x);
  const int M = static_cast<int>(p.M);
  const int64_t N = p.N;
  const int64_t n = n0 + tid;
  const int my_rows = M > split ? (M - split + splits - 1) / splits : 0;
  if (n < N) {
    const float bias = p.bias != nullptr ? to_float(p.bias[n]) : 0.0f;
    for (int b0 = 0; b0 < my_rows; b0 += kBatch) {
      float v[kBatch][Traits::kMaxSplits];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        float* mine = part + (split + (b0 + b) * splits) * kPartStride + tid;
#pragma unroll
        for (int r = 0; r < Traits::kMaxSplits; ++r) {
          const bool live = b0 + b < my_rows && r < splits;
          v[b][r] = !live ? 0.0f : r == split ? *mine : *cluster.map_shared_rank(mine, r);
        }
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        if (b0 + b >= my_rows) break;
        const int m = split + (b0 + b) * splits;
        float y = 0.0f;
#pragma unroll
        for (int r = 0; r < Traits::kMaxSplits; ++r) y += v[b][r];  // fixed order (zeros past splits): deterministic
        store_linear_output(p, int64_t{m} * N + n, y + bias);
      }
    }
  }
  cluster.sync();  // peers may still be reading this CTA's partial tile: stay resident until done
}


// Shared-memory geometry of one variant (MT: n-tiles of 8 tokens the kernel is built for).
template <int MT>
struct Layout {
  static constexpr int kStages = Traits::kStagesFor<MT>;
  static constexpr int kRowBytes = Traits::kKTile * 2;              // one k tile of one row: 128 B
  static constexpr int kChunks = kRowBytes / 16;                    // 16-byte chunks per row: 8
  static constexpr int kWBytes = Traits::kBlockN * kRowBytes;       // weight tile [128][64]: 16 KB
  static constexpr int kXBytes = MT * 8 * kRowBytes;                // x tile [MT * 8][64]
  static constexpr int kStageBytes = kWBytes + kXBytes;
  static constexpr int kSmemBytes = kStages * kStageBytes;
  static constexpr int kRowsPerPass = Traits::kThreads / kChunks;   // rows one cp.async pass covers: 16
  static constexpr int kWPasses = Traits::kBlockN / kRowsPerPass;   // 8
  static constexpr int kXPasses = (MT * 8 + kRowsPerPass - 1) / kRowsPerPass;

  static_assert(kChunks % 8 == 0, "the swizzle c ^ (r % 8) permutes groups of 8 chunks (128 bytes)");
  static_assert(kRowsPerPass % 8 == 0, "a thread's rows must share r % 8 (one swizzle per thread)");
  static_assert(kPartialBytes<MT> <= kSmemBytes, "the partial tile reuses the pipeline's memory");
  static_assert(kSmemBytes <= 113 * 1024, "two CTAs per SM need <= 113 KB each");
};

// ---- PTX wrappers --------------------------------------------------------------------------

// An L2 policy that evicts these lines first: weights are read once, x and outputs stay.
__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

// cp_async_16 with an L2 cache-policy hint (detail::cp_async_16 is the plain one).
__device__ __forceinline__ void cp_async_16_policy(uint32_t dst, const void* src, bool valid, uint64_t policy) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;" ::"r"(dst), "l"(src),
               "r"(src_bytes), "l"(policy)
               : "memory");
}

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i, register i holds it.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
// Two 8x8 b16 matrices (lanes 0..15 give the addresses).
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(addr)
               : "memory");
}

// ---- the kernel ----------------------------------------------------------------------------

// Grid (splits, ceil(N / kBlockN)), clusters of (splits, 1, 1), Traits::kThreads threads,
// Layout<MT>::kSmemBytes of dynamic shared memory. m_tiles = ceil(M / 8) <= MT; k_tiles =
// ceil(K / kKTile).
template <typename T, int MT>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinCtasPerSm)
flat_gemm_pipelined_kernel(const FlatGemmParams<T> p, const int m_tiles, const int k_tiles) {
  enter_dependent_grid();
  using L = Layout<MT>;
  constexpr int kStages = L::kStages;
  constexpr int kRowTiles = Traits::kRowTilesPerWarp;
  extern __shared__ __align__(128) unsigned char smem[];

  const int split = static_cast<int>(blockIdx.x);  // == the rank in the cluster: clusters span x
  const int splits = static_cast<int>(gridDim.x);
  const int64_t N = p.N, K = p.K;
  const int M = static_cast<int>(p.M);
  const int64_t n0 = int64_t{blockIdx.y} * Traits::kBlockN;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;

  // This split's k tiles: [t_begin, t_begin + n_tiles).
  const int t_begin = static_cast<int>(int64_t{split} * k_tiles / splits);
  const int n_tiles = static_cast<int>(int64_t{split + 1} * k_tiles / splits) - t_begin;

  // Copy roles: thread tid copies chunk `chunk` (k elements 8 * chunk .. + 8 of the tile) of rows
  // row0, row0 + 16, ... of the weight tile and of the x tile. All its rows share r % 8, so one
  // swizzled offset serves them all.
  const int chunk = tid % L::kChunks, row0 = tid / L::kChunks;
  const uint32_t swizzled = static_cast<uint32_t>(((chunk ^ (row0 % 8)) * 16));
  const T* w_first = p.w + (n0 + row0) * K + chunk * 8;  // row n0 + row0 of w, this chunk, k tile 0
  const T* x_first = p.x + int64_t{row0} * K + chunk * 8;
  const int x_rows = m_tiles * 8;  // tokens the mma loop reads; those in [M, x_rows) are zeros
  const uint64_t w_policy = evict_first_policy();
  const uint32_t smem_base = smem_u32(smem);

  auto load_tile = [&](int tile, int stage) {
    const int64_t k0 = int64_t{tile} * Traits::kKTile;
    const bool k_ok = k0 + chunk * 8 < K;  // K % 8 == 0: a chunk is wholly inside or outside
    const uint32_t w_dst = smem_base + static_cast<uint32_t>(stage * L::kStageBytes) + row0 * L::kRowBytes + swizzled;
#pragma unroll
    for (int i = 0; i < L::kWPasses; ++i) {
      const bool ok = k_ok && n0 + row0 + i * L::kRowsPerPass < N;
      const T* src = ok ? w_first + int64_t{i} * L::kRowsPerPass * K + k0 : p.w;
      cp_async_16_policy(w_dst + i * L::kRowsPerPass * L::kRowBytes, src, ok, w_policy);
    }
    const uint32_t x_dst = w_dst + L::kWBytes;  // same row0 and swizzle in the x tile
#pragma unroll
    for (int i = 0; i < L::kXPasses; ++i) {
      const int token = row0 + i * L::kRowsPerPass;
      if (token < x_rows) {
        const bool ok = k_ok && token < M;
        const T* src = ok ? x_first + int64_t{i} * L::kRowsPerPass * K + k0 : p.x;
        cp_async_16(x_dst + i * L::kRowsPerPass * L::kRowBytes, src, ok);
      }
    }
  };

  // ldmatrix roles. A (weights), x4: lanes 0-7 address rows 0-7 of k 0-7, lanes 8-15 rows 8-15
  // of k 0-7, 16-23 rows 0-7 of k 8-15, 24-31 rows 8-15 of k 8-15: registers a0..a3 as the mma
  // wants them. B (x), x2: lanes 0-7 tokens 0-7 of k 0-7, lanes 8-15 the same tokens of k 8-15.
  // Every row an 8-lane group addresses has r % 8 == lane % 8: the swizzle XORs with lane % 8.
  uint32_t a_row_offset[kRowTiles];
#pragma unroll
  for (int i = 0; i < kRowTiles; ++i)
    a_row_offset[i] = static_cast<uint32_t>((warp * kRowTiles * 16 + i * 16 + (lane % 8) + ((lane / 8) % 2) * 8) *
                                            L::kRowBytes);
  const int a_chunk_hi = lane / 16;     // A: k 8-15 for lanes 16-31
  const int b_chunk_hi = (lane / 8) % 2;  // B: k 8-15 for lanes 8-15
  const uint32_t b_row_offset = static_cast<uint32_t>((lane % 8) * L::kRowBytes);
  const int lane_swizzle = lane % 8;

  float acc[kRowTiles][MT][4];
#pragma unroll
  for (int i = 0; i < kRowTiles; ++i)
#pragma unroll
    for (int j = 0; j < MT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  // Pipeline: tiles 0..kStages-2 are requested up front; iteration t waits for tile t, requests
  // tile t + kStages - 1 into the stage tile t - 1 used (every warp finished it before this
  // iteration's barrier), then computes tile t. Every iteration commits one group (empty ones
  // at the end) so wait_group counts tiles.
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < n_tiles) load_tile(t_begin + s, s);
    cp_async_commit();
  }
  int read_stage = 0, write_stage = kStages - 1;
  for (int t = 0; t < n_tiles; ++t) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    if (t + kStages - 1 < n_tiles) load_tile(t_begin + t + kStages - 1, write_stage);
    cp_async_commit();

    const uint32_t w_tile = smem_base + static_cast<uint32_t>(read_stage * L::kStageBytes);
    const uint32_t x_tile = w_tile + L::kWBytes;
#pragma unroll
    for (int ks = 0; ks < Traits::kKTile / 16; ++ks) {
      uint32_t a[kRowTiles][4];
#pragma unroll
      for (int i = 0; i < kRowTiles; ++i)
        ldmatrix_x4(a[i], w_tile + a_row_offset[i] + static_cast<uint32_t>(((2 * ks + a_chunk_hi) ^ lane_swizzle) * 16));
#pragma unroll
      for (int j = 0; j < MT; ++j) {
        if (j < m_tiles) {  // warp-uniform
          uint32_t b[2];
          ldmatrix_x2(b, x_tile + j * 8 * L::kRowBytes + b_row_offset +
                             static_cast<uint32_t>(((2 * ks + b_chunk_hi) ^ lane_swizzle) * 16));
#pragma unroll
          for (int i = 0; i < kRowTiles; ++i) detail::mma_16816(acc[i][j], a[i], b[0], b[1], T{});
        }
      }
    }
    read_stage = read_stage + 1 == kStages ? 0 : read_stage + 1;
    write_stage = write_stage + 1 == kStages ? 0 : write_stage + 1;
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with the stages: the partial tile may overwrite them

  store_partial_tile<kRowTiles, MT>(reinterpret_cast<float*>(smem), acc, warp, lane, m_tiles);
  cluster_reduce_store(p, reinterpret_cast<float*>(smem), n0, split, splits);
}

}  // namespace fdpp::cuda::flat_gemm_detail
