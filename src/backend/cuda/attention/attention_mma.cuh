// Split-KV attention for grouped-query heads on tensor cores (mma.sync m16n8k16, fp32 accumulate).
// Internal to attention.cu: the same Params, workspace layout and asynchronized softmax as the
// CUDA-core kernel there, for GQA groups of 3..8 query heads, where CUDA cores would need about
// 8 multiply-adds per KV byte (more than they can issue at full HBM bandwidth).
//
// Each warp walks its own tiles of 16 positions (tile i of warp w starts at begin + 16 (w + 4 i))
// and copies their K and V rows into a private ring of kStages shared-memory stages
// (SplitKvTraits::kMmaStages or kMmaShallowStages: AttentionPlan::mma_stages), so that the next
// tiles' loads are in flight while one tile is computed. The copies are either cp.async, 16 bytes
// per lane and instruction (any sm_80+), or on the TMA unit (AttentionPlan::mma_bulk, sm_90),
// completing on the stage's mbarrier: one bulk copy per K or V row per lane, or, where a tile lies
// in one cache block (AttentionPlan::mma_tensor_maps), one tensor copy per 64 head dims of K or V
// from lane 0 (MmaCopy).
// Per tile:
//   S [16 x 16] = Q [16 rows: the group's heads, padded with zeros] . K^T   (K by ldmatrix)
//   O [16 x hd] += P [16 x 16] . V [16 x hd]                                  (V by ldmatrix.trans)
// P = e^(s - phi) is in the input dtype where it fits: always for bf16; for fp16 when every head's
// largest weight of the tile is in [2^kHalfPMinLog2, 2^kHalfPMaxLog2] (the prefill kernel's test).
// Other fp16 tiles take bf16 P (fp32's exponent) against V split exactly into bf16 high + low
// parts: two mma instead of one.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/attention/attention_traits.h"
#include "backend/cuda/attention/split_common.cuh"
#include "backend/cuda/bulk_copy.cuh"
#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ptx.cuh"
#include "backend/cuda/tensor_map.h"

namespace fdpp::cuda::detail {

// How the tensor-core kernel fills its ring (AttentionPlan::mma_bulk, mma_tensor_maps).
enum class MmaCopy {
  kCpAsync,     // 16 bytes per lane and cp.async (sm_80+)
  kBulkRows,    // one bulk copy per K or V row (sm_90)
  kTensorTiles  // one tensor copy per 64 head dims of a tile's K or V (sm_90; tiles in one cache block)
};

// Tensor maps of one layer's K and V caches for kTensorTiles (encode_kv_tile_maps); a kernel
// parameter (__grid_constant__), unused by the other copy engines.
struct KvTileMaps {
  CUtensorMap k, v;
};

// Shared memory of one block: per warp, kStages stages of K [16][hd] then V [16][hd], laid out
// so that the 8 row addresses of an ldmatrix fall in distinct banks. cp.async writes 16-byte
// chunks anywhere: chunk c of row r sits at chunk c ^ (r % 8) of a dense row. A bulk copy writes
// a row contiguously: rows are padded by 16 bytes instead (a row stride of 4 banks mod 32). A
// tensor copy writes 64 head dims of the tile's 16 rows with the 128-byte swizzle: chunk c of
// row r sits in half c / 8 (16 rows of 128 bytes) at chunk (c % 8) ^ (r % 8), the ring aligned to
// 1024 bytes. At the end the ring is reused for the warps' partial sums.
template <int kHeadDim, int kStages, MmaCopy kCopy>
struct MmaSplitSmem {
  static constexpr bool kBulk = kCopy == MmaCopy::kBulkRows;
  static constexpr bool kTensor = kCopy == MmaCopy::kTensorTiles;
  static constexpr int kTile = SplitKvTraits::kMmaTile;
  static constexpr int kChunks = kHeadDim / 8;                       // 16-byte chunks per row
  static constexpr uint32_t kRowPayload = kHeadDim * 2;              // bytes of one K or V row
  static constexpr uint32_t kRowBytes = kRowPayload + (kBulk ? 16 : 0);
  static constexpr uint32_t kMatrixBytes = kTile * kRowBytes;        // K or V of one tile
  static constexpr uint32_t kStageBytes = 2 * kMatrixBytes;
  static constexpr uint32_t kWarpBytes = kStages * kStageBytes;
  static constexpr uint32_t kHalfBytes = kTile * 128u;               // kTensor: 64 head dims of a tile
  static constexpr uint32_t kRingAlign = kTensor ? 1024u : 16u;      // the swizzle's period
  static constexpr size_t kBytes = std::max<size_t>(SplitKvTraits::kWarps * size_t{kWarpBytes} + kRingAlign - 16u,
                                                    sizeof(SplitPartials<8, kHeadDim>));
  static_assert(kChunks >= 8, "the swizzle needs 8 chunks per row");
  static_assert(!kBulk || 2 * kTile == 32, "bulk copies: one K or V row of a tile per lane");
  __device__ static uint32_t offset(int row, int chunk) {
    if constexpr (kTensor)
      return static_cast<uint32_t>(chunk / 8) * kHalfBytes + static_cast<uint32_t>(row) * 128u +
             static_cast<uint32_t>((chunk % 8) ^ (row & 7)) * 16u;
    if constexpr (kBulk) return static_cast<uint32_t>(row) * kRowBytes + static_cast<uint32_t>(chunk) * 16u;
    return static_cast<uint32_t>(row * kChunks + (chunk ^ (row & 7))) * 16u;
  }
};

// Two blocks per SM of the deep ring and three of the shallow one (the figures each depth was
// chosen for) fit the H100's 228 KB, with the 1 KB per block the system reserves and the
// fallback's few hundred bytes of static memory.
static_assert(MmaSplitSmem<128, SplitKvTraits::kMmaStages, MmaCopy::kBulkRows>::kBytes <= 112 * 1024 &&
                  MmaSplitSmem<128, SplitKvTraits::kMmaStages, MmaCopy::kTensorTiles>::kBytes <= 112 * 1024,
              "head_dim 128, deep ring: two blocks per SM must fit");
static_assert(MmaSplitSmem<128, SplitKvTraits::kMmaShallowStages, MmaCopy::kBulkRows>::kBytes <= 74 * 1024 &&
                  MmaSplitSmem<128, SplitKvTraits::kMmaShallowStages, MmaCopy::kTensorTiles>::kBytes <= 74 * 1024,
              "head_dim 128, shallow ring: three blocks per SM must fit");

// The A fragment of P (rows g + 8 are padding): a0 = P[g][2tig, 2tig+1], a2 = P[g][8+2tig, 9+2tig].
template <typename PT>
__device__ __forceinline__ void pack_p(const float (&e)[2][2], uint32_t (&pa)[4], float& sum) {
  pa[0] = pack_weights<PT>(e[0][0], e[0][1], sum);
  pa[2] = pack_weights<PT>(e[1][0], e[1][1], sum);
  pa[1] = pa[3] = 0u;
}

template <typename T, int kHeadDim, int kStages, MmaCopy kCopy>
__global__ void __launch_bounds__(SplitKvTraits::kThreads)
    split_kv_mma_kernel(const AttentionParams<T> p, const __grid_constant__ KvTileMaps maps) {
  using Tr = SplitKvTraits;
  using Smem = MmaSplitSmem<kHeadDim, kStages, kCopy>;
  constexpr bool kBulk = Smem::kBulk, kTensor = Smem::kTensor;
  constexpr bool kBarriers = kBulk || kTensor;  // the stages complete on mbarriers
  static_assert(kStages >= 2, "one tile loading while one is computed");
  constexpr int kTile = Smem::kTile;
  constexpr int kKSteps = kHeadDim / 16;              // k-steps of Q.K^T
  constexpr int kNTiles = kHeadDim / 8;               // n-tiles of P.V
  constexpr int kCopies = kTile * Smem::kChunks / 32; // 16-byte copies per lane per tile, K and V each
  constexpr bool kHalf = std::is_same_v<T, __half>;
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ __align__(8) uint64_t stage_bars[kBarriers ? Tr::kWarps * kStages : 1];  // one per warp and stage

  const int split = blockIdx.x, kv_head = blockIdx.y;
  const int64_t z = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tig = lane % 4;  // mma fragment coordinates
  const int r8 = lane % 8, mat = lane / 8; // ldmatrix: this lane addresses row r8 of matrix `mat`
  const uint32_t ring = ((smem_u32(smem) + Smem::kRingAlign - 1u) & ~(Smem::kRingAlign - 1u)) + warp * Smem::kWarpBytes;

  const int64_t t = p.token_of(z);
  const int group = p.num_q_heads / p.kv.num_kv_heads;
  const int kv_len = p.slots.positions[t] + 1;
  const int begin = split * p.plan.split_size;
  const int end = min(kv_len, begin + p.plan.split_size);
  const int first = begin + kTile * warp;
  const int n_tiles = first < end ? (end - first + kTile * Tr::kWarps - 1) / (kTile * Tr::kWarps) : 0;
  const int64_t row_elems = int64_t{p.kv.num_kv_heads} * kHeadDim;
  const int32_t* table = p.slots.block_tables + int64_t{p.slots.token_seq[t]} * p.slots.max_blocks_per_seq;
  const T* k_head = p.kv.k + int64_t{kv_head} * kHeadDim;
  const T* v_head = p.kv.v + int64_t{kv_head} * kHeadDim;

  // Rows of tile i into stage i % kStages; positions past `end` become zeros (V must be finite
  // there: their zero weights would turn garbage into NaN).
  // Tiles start at multiples of kTile (split sizes are multiples of 64), so when a cache block
  // holds a whole number of tiles, a tile's rows are consecutive slots of one block: one table
  // read per tile instead of one per copy.
  const bool tile_in_one_block = p.kv.block_size % kTile == 0;
  // Then lane l holds the cache block of tile 32c + l (c: the batch of 32 tiles being issued), read
  // in one load per lane, and a tile's block comes by shuffle: without it every copy waited on its
  // own table read (an L2 round trip before the first two tiles' copies, and one per tile after).
  int32_t batch_blocks = 0;
  int batch = -1;
  auto tile_block = [&](int i) {  // warp-uniform i < n_tiles
    if (i / 32 != batch) {
      batch = i / 32;
      const int j = 32 * batch + lane;
      batch_blocks = j < n_tiles ? table[(first + kTile * Tr::kWarps * j) / p.kv.block_size] : 0;
    }
    return __shfl_sync(0xffffffffu, batch_blocks, i % 32);
  };
  // Slot of the tile's first row (tile_in_one_block: the tile's rows follow it).
  auto tile_slot_of = [&](int i, int base) {
    return int64_t{tile_block(i)} * p.kv.block_size + base % p.kv.block_size;
  };
  const uint32_t bars = smem_u32(stage_bars) + warp * kStages * 8u;
  if constexpr (kBarriers) {
    if (lane == 0)
      for (int s = 0; s < kStages; ++s) mbarrier_init(bars + 8u * s, 1);
    fence_mbarrier_init();
    __syncwarp();
  }
  // kBulk: lane l copies K row l (l < 16) or V row l - 16 of the tile as one bulk copy; lane 0
  // announces the tile's bytes on the stage's mbarrier. Rows past `end` are zeroed by their lane
  // (the stage's previous tile was consumed: the loop's __syncwarp orders it).
  auto copy_tile_bulk = [&](int i) {
    const int base = first + kTile * Tr::kWarps * i;
    const uint32_t stage = ring + (i % kStages) * Smem::kStageBytes, bar = bars + 8u * (i % kStages);
    if (lane == 0) mbarrier_arrive_expect_tx(bar, 2u * Smem::kRowPayload * static_cast<uint32_t>(min(kTile, end - base)));
    const int row = lane % kTile;
    const uint32_t dst = stage + (lane < kTile ? 0u : Smem::kMatrixBytes) + Smem::offset(row, 0);
    const int64_t first_slot = tile_in_one_block ? tile_slot_of(i, base) : 0;  // every lane: a shuffle
    if (base + row < end) {
      const int64_t slot = tile_in_one_block ? first_slot + row : cache_slot(table, base + row, p.kv.block_size);
      bulk_copy_g2s(dst, (lane < kTile ? k_head : v_head) + slot * row_elems, Smem::kRowPayload, bar);
    } else {
#pragma unroll
      for (int c = 0; c < Smem::kChunks; ++c)
        st_shared_zero_16(dst + 16u * c);
    }
  };
  // kTensor: lane 0 copies the tile's K and V, 64 head dims per copy, from the tile's first slot
  // (tile_in_one_block holds). Rows past `end` arrive too (slots of the same cache block, stale or
  // never written); the loop zeroes their V before use.
  auto copy_tile_tensor = [&](int i) {
    const int base = first + kTile * Tr::kWarps * i;
    const uint32_t stage = ring + (i % kStages) * Smem::kStageBytes, bar = bars + 8u * (i % kStages);
    const int slot = static_cast<int>(tile_slot_of(i, base));  // every lane: a shuffle
    if (lane == 0) {
      mbarrier_arrive_expect_tx(bar, Smem::kStageBytes);
#pragma unroll
      for (int half = 0; half < kHeadDim / 64; ++half) {
        const uint32_t k_dst = stage + half * Smem::kHalfBytes;
        tensor_copy_3d_g2s(k_dst, &maps.k, 64 * half, kv_head, slot, bar);
        tensor_copy_3d_g2s(k_dst + Smem::kMatrixBytes, &maps.v, 64 * half, kv_head, slot, bar);
      }
    }
  };
  auto copy_tile = [&](int i) {
    if constexpr (kTensor) {
      copy_tile_tensor(i);
      return;
    }
    if constexpr (kBulk) {
      copy_tile_bulk(i);
      return;
    }
    const int base = first + kTile * Tr::kWarps * i;
    const uint32_t k_dst = ring + (i % kStages) * Smem::kStageBytes;
    const int64_t tile_slot = tile_in_one_block ? tile_slot_of(i, base) : 0;  // i < n_tiles: base < end
#pragma unroll
    for (int j = 0; j < kCopies; ++j) {
      const int c = lane + 32 * j, row = c / Smem::kChunks, chunk = c % Smem::kChunks;
      const int pos = base + row;
      const bool ok = pos < end;
      const int64_t slot_elems = !ok                ? 0
                                 : tile_in_one_block ? (tile_slot + row) * row_elems
                                                     : slot_offset(table, pos, p.kv.block_size, row_elems);
      const int64_t off = slot_elems + chunk * 8;
      cp_async_16(k_dst + Smem::offset(row, chunk), k_head + off, ok);
      cp_async_16(k_dst + Smem::kMatrixBytes + Smem::offset(row, chunk), v_head + off, ok);
    }
  };
  // The ring's first tiles are requested before the wait for the previous kernel (launch.cuh):
  // those whose positions all lie before the row's own. Earlier steps wrote those, and every
  // kernel of theirs has completed; the previous kernel (qkv_store) may still be writing the
  // row's own position and q. Tile i is commit group i either way; tile bases grow with i, so
  // the early tiles are a prefix.
  auto early = [&](int i) { return end < kv_len || first + kTile * Tr::kWarps * i + kTile <= kv_len - 1; };
  int issued = 0;
  for (; issued < kStages - 1 && issued < n_tiles && early(issued); ++issued) {
    copy_tile(issued);
    if constexpr (!kBarriers) cp_async_commit();
  }
  enter_dependent_grid();
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < issued) continue;
    if (i < n_tiles) copy_tile(i);
    if constexpr (!kBarriers) cp_async_commit();  // empty groups too: the wait below counts groups
  }

  // Q fragments (A of Q.K^T): row g = head g of the group, k-step ks = dims 16ks...
  uint32_t qa[kKSteps][4];
  {
    const T* q = p.q + (t * p.num_q_heads + kv_head * group + min(g, group - 1)) * kHeadDim;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      qa[ks][0] = g < group ? *reinterpret_cast<const uint32_t*>(q + 16 * ks + 2 * tig) : 0u;
      qa[ks][2] = g < group ? *reinterpret_cast<const uint32_t*>(q + 16 * ks + 8 + 2 * tig) : 0u;
      qa[ks][1] = qa[ks][3] = 0u;
    }
  }
  const float s_scale = p.scale * kLog2e;
  const float phi2 = p.range.phi * kLog2e;
  const float lo2 = p.range.lo * kLog2e, hi2 = p.range.hi * kLog2e;
  float acc[kNTiles][4] = {};  // O fragments: c0, c1 = O[head g][8nt + 2tig, +1]; c2, c3 padding
  float sum = 0.0f;
  bool out_of_range = false;

  for (int i = 0; i < n_tiles; ++i) {
    if constexpr (kBarriers) mbarrier_wait_parity(bars + 8u * (i % kStages), static_cast<uint32_t>(i / kStages) & 1u);
    else cp_async_wait<kStages - 2>();
    __syncwarp();  // tile i visible to every lane; every lane done with tile i - 1's stage
    if (i + kStages - 1 < n_tiles) copy_tile(i + kStages - 1);
    if constexpr (!kBarriers) cp_async_commit();
    const uint32_t k_tile = ring + (i % kStages) * Smem::kStageBytes;
    const uint32_t v_tile = k_tile + Smem::kMatrixBytes;
    const int base = first + kTile * Tr::kWarps * i;
    if (kTensor && base + kTile > end) {  // the row's last tile: V past `end` must be finite (zero weights)
      for (int c = lane; c < (base + kTile - end) * Smem::kChunks; c += 32)
        st_shared_zero_16(v_tile + Smem::offset(end - base + c / Smem::kChunks, c % Smem::kChunks));
      __syncwarp();
    }

    // S: matrices {positions 0-7, 8-15} x {dims 16ks.., 16ks+8..}: kb[0..1] are B of n-tile 0.
    float s[2][4] = {};
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      uint32_t kb[4];
      ldmatrix_x4(kb, k_tile + Smem::offset(r8 + 8 * (mat / 2), 2 * ks + mat % 2));
      mma_16816(s[0], qa[ks], kb[0], kb[1], T{});
      mma_16816(s[1], qa[ks], kb[2], kb[3], T{});
    }
    // Weights: lane holds head g, positions base + 8h + 2tig + {0, 1}.
    float e[2][2];
    float xmax = -INFINITY;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const float s2 = s[h][c] * s_scale;
        const bool live = base + 8 * h + 2 * tig + c < end && g < group;
        out_of_range |= live && ((s2 < lo2) | (s2 > hi2));
        const float x = s2 - phi2;
        e[h][c] = live ? exp2f(x) : 0.0f;
        if (live) xmax = fmaxf(xmax, x);
      }
    }
    uint32_t pa[4];
    const bool half_p = kHalf && __all_sync(0xffffffffu, row_fits_half(xmax));  // warp-uniform
    if (kHalf && !half_p) pack_p<__nv_bfloat16>(e, pa, sum);
    else pack_p<T>(e, pa, sum);

    // O += P.V: matrices {positions 0-7, 8-15} x {dims 16dp.., 16dp+8..}: vb[0..1] are B of n-tile 2dp.
#pragma unroll
    for (int dp = 0; dp < kNTiles / 2; ++dp) {
      uint32_t vb[4];
      ldmatrix_x4_trans(vb, v_tile + Smem::offset(r8 + 8 * (mat % 2), 2 * dp + mat / 2));
      if (!kHalf || half_p) {
        mma_16816(acc[2 * dp], pa, vb[0], vb[1], T{});
        mma_16816(acc[2 * dp + 1], pa, vb[2], vb[3], T{});
      } else {
        uint32_t hi[4], lo[4];
#pragma unroll
        for (int r = 0; r < 4; ++r) split_f16x2(vb[r], hi[r], lo[r]);
        mma_16816(acc[2 * dp], pa, hi[0], hi[1], __nv_bfloat16{});
        mma_16816(acc[2 * dp + 1], pa, hi[2], hi[3], __nv_bfloat16{});
        mma_16816(acc[2 * dp], pa, lo[0], lo[1], __nv_bfloat16{});
        mma_16816(acc[2 * dp + 1], pa, lo[2], lo[3], __nv_bfloat16{});
      }
    }
  }
  if constexpr (!kBarriers) cp_async_wait_all();  // only empty groups can remain

  // Row sums: the four lanes of a row (tig) hold different positions.
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  __syncthreads();  // every warp is done with its ring: the partials reuse it
  auto& sp = *reinterpret_cast<SplitPartials<8, kHeadDim>*>(smem);
  if (threadIdx.x == 0) sp.out_of_range = 0;
  __syncthreads();
  if (out_of_range) sp.out_of_range = 1;
  if (g < group) {
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt) {
      sp.acc[warp][g][8 * nt + 2 * tig] = acc[nt][0];
      sp.acc[warp][g][8 * nt + 2 * tig + 1] = acc[nt][1];
    }
    if (tig == 0) sp.sum[warp][g] = sum;
  }
  __syncthreads();
  store_split(p, sp, z, kv_head, group, split);
}

// Above the 48 KB default of dynamic shared memory; the attribute is per device, so it is set on
// every launch (a cheap host call, allowed while a graph is being captured).
template <typename T, int kHeadDim, int kStages, MmaCopy kCopy>
cudaError_t launch_split_mma_ring(const AttentionParams<T>& p, const KvTileMaps& maps, dim3 grid,
                                  cudaStream_t stream) {
  constexpr size_t kBytes = MmaSplitSmem<kHeadDim, kStages, kCopy>::kBytes;
  void (*kernel)(AttentionParams<T>, KvTileMaps) = split_kv_mma_kernel<T, kHeadDim, kStages, kCopy>;
  const cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kBytes));
  if (err != cudaSuccess) return err;
  return launch_kernel_with(p.plan.split_pdl, kernel, grid, dim3(SplitKvTraits::kThreads), kBytes, stream, 1, p,
                            maps);
}

// The ring depth the plan chose (AttentionPlan::mma_stages).
template <typename T, int kHeadDim, MmaCopy kCopy>
cudaError_t launch_split_mma_copies(const AttentionParams<T>& p, const KvTileMaps& maps, dim3 grid,
                                    cudaStream_t stream) {
  if (p.plan.mma_stages == SplitKvTraits::kMmaShallowStages)
    return launch_split_mma_ring<T, kHeadDim, SplitKvTraits::kMmaShallowStages, kCopy>(p, maps, grid, stream);
  return launch_split_mma_ring<T, kHeadDim, SplitKvTraits::kMmaStages, kCopy>(p, maps, grid, stream);
}

// Tensor maps over one layer's cache, k and v [slots, Hkv, hd] as a 3-D view {hd, Hkv, slots},
// one copy moving 64 head dims of one head's kMmaTile slots. False where a tile may straddle two
// cache blocks or the driver declines the view: the launch then takes bulk row copies.
template <typename T>
bool encode_kv_tile_maps(const PagedKv<T>& kv, KvTileMaps& maps) {
  if (kv.block_size % SplitKvTraits::kMmaTile != 0 || kv.head_dim % 64 != 0) return false;
  TileMapView view;
  view.dims[0] = static_cast<uint64_t>(kv.head_dim);
  view.dims[1] = static_cast<uint64_t>(kv.num_kv_heads);
  view.dims[2] = static_cast<uint64_t>(kv.num_blocks) * static_cast<uint64_t>(kv.block_size);
  view.strides[0] = static_cast<uint64_t>(kv.head_dim) * sizeof(T);
  view.strides[1] = view.strides[0] * static_cast<uint64_t>(kv.num_kv_heads);
  view.box[0] = 64;
  view.box[1] = 1;
  view.box[2] = SplitKvTraits::kMmaTile;
  view.base = kv.k;
  if (!encode_swizzled_tile_map(view, &maps.k)) return false;
  view.base = kv.v;
  return encode_swizzled_tile_map(view, &maps.v);
}

// The copy engine the plan chose (AttentionPlan::mma_bulk, mma_tensor_maps).
template <typename T, int kHeadDim>
cudaError_t launch_split_mma(const AttentionParams<T>& p, dim3 grid, cudaStream_t stream) {
  KvTileMaps maps{};
  if (!p.plan.mma_bulk) return launch_split_mma_copies<T, kHeadDim, MmaCopy::kCpAsync>(p, maps, grid, stream);
  if (p.plan.mma_tensor_maps && encode_kv_tile_maps(p.kv, maps))
    return launch_split_mma_copies<T, kHeadDim, MmaCopy::kTensorTiles>(p, maps, grid, stream);
  return launch_split_mma_copies<T, kHeadDim, MmaCopy::kBulkRows>(p, maps, grid, stream);
}

}  // namespace fdpp::cuda::detail
