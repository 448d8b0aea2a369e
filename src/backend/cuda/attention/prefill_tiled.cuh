// Tiled prefill attention on tensor cores (head_dim 64 and 128). Internal to prefill.cu.
//
// One block per (query head, tile of up to kBlockRows consecutive query tokens of one sequence):
// 4 warps x 32 rows. The block walks KV positions [0, last row's position] in tiles of kKvTile:
// each K and V tile is gathered through the block table into shared memory once (cp.async,
// 16 bytes per copy) and read by all four warps with ldmatrix, so every byte fetched from L2
// serves 128 query rows. Per tile and warp, in chunks of kScoreChunk positions:
//   S = Q K^T           (mma m16n8k16, Q and K in the input dtype, fp32 accumulators)
//   P = e^(s - phi)     (FlashDecoding++'s asynchronized softmax: one phi for the layer, no
//                        running max, no rescale; causal mask per row on the diagonal tiles)
//   O += P V, l += P    (bf16 inputs: P in bf16. fp16 inputs: P in fp16 against fp16 V where the
//                        chunk's weights fit fp16 (PrefillTraits::kHalfPMinLog2), else P in bf16,
//                        whose exponent range e^(s - phi) may need, against V split exactly into
//                        bf16 high + low parts; l sums the same rounded P the numerator uses)
// and every unmasked score is checked against [lo, hi]. At the end a warp writes its rows
// O / l to `out` and a flag per (row, head) to the workspace; the fallback pass (prefill.cu)
// recomputes flagged rows with the online softmax, so their first result is never used.
//
// Pipeline per KV tile j (one K and one V buffer, two barriers, FlashAttention-2's order):
//   wait K_j, barrier | issue V_j    | S = Q K_j^T, P  (V_j arrives meanwhile)
//   wait V_j, barrier | issue K_j+1  | O += P V_j     (K_j+1 arrives meanwhile)
#pragma once

#include <type_traits>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/attention/attention_traits.h"
#include "backend/cuda/ptx.cuh"
#include "backend/cuda/attention/split_common.cuh"
#include "backend/cuda/cuda_utils.cuh"

namespace fdpp::cuda::detail {

static_assert(PrefillTraits::kBlockRows == kPrefillTileRows, "a block computes one prefill tile");

// Dynamic shared memory of one block, in elements of T: Q [kBlockRows][kStride], K and V
// [kKvTile][kStride]; then the slot index of each position of the next two KV tiles
// (int32 [2][kKvTile]), the position of each query row (int32 [kBlockRows], -1 past the count),
// each warp's first and last row position (int32 [2][kWarps]; -1, -1 for a warp past the count),
// the sequence's block-table row and the end of its KV range. Values the main loop needs rarely
// live there rather than in registers.
template <typename T, int kHeadDim>
struct PrefillSmem {
  using Tr = PrefillTraits;
  static constexpr int kStride = kHeadDim + Tr::kSmemPad;
  static constexpr int kQ = 0;
  static constexpr int kK = kQ + Tr::kBlockRows * kStride;
  static constexpr int kV = kK + Tr::kKvTile * kStride;
  static constexpr int kElems = kV + Tr::kKvTile * kStride;
  static constexpr size_t kSlotOffset = size_t{kElems} * 2;
  static constexpr size_t kRowPosOffset = kSlotOffset + 2 * Tr::kKvTile * sizeof(int32_t);
  static constexpr size_t kWarpPosOffset = kRowPosOffset + Tr::kBlockRows * sizeof(int32_t);
  static constexpr size_t kTableOffset = kWarpPosOffset + 2 * Tr::kWarps * sizeof(int32_t);
  static constexpr size_t kBytes = kTableOffset + 2 * sizeof(int64_t);
  static_assert(kStride * 2 % 16 == 0, "rows must stay 16-byte aligned for cp.async and ldmatrix");
};

// Score -> weight constants, made on the host (kernel parameters cost no registers): for a raw
// score s = q.k, x = s * scale2 - phi2 feeds exp2 (2^x = e^(s * scale - phi)), and s is out of
// range when |s - mid| > half, i.e. s * scale outside [lo, hi].
struct SoftmaxConsts {
  float scale2, phi2, mid, half;
};
inline SoftmaxConsts softmax_consts(float scale, const SoftmaxRange& r) {
  return {scale * kLog2e, r.phi * kLog2e, 0.5f * (r.lo + r.hi) / scale, 0.5f * (r.hi - r.lo) / scale};
}

// Weights of one score chunk of a warp, in place: s (C fragments, n-tile nt = positions
// pos0 - 2tig + 8nt..+7) becomes e = 2^x, x = s * scale2 - phi2; dev keeps the largest |s - mid| of
// each row (range check) and xmax the largest x of each of this lane's positions (kTrackMax).
// kMasked: positions past a row's own position (rpos; -1 for rows past the tile's count) weigh 0
// and are neither checked nor counted in xmax.
template <bool kMasked, bool kTrackMax, int kSTiles>
__device__ __forceinline__ void chunk_weights(float (&s)[2][kSTiles][4], float (&dev)[2][2], float (&xmax)[2][2],
                                              const int32_t* rpos, int pos0, const SoftmaxConsts& c) {
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float v = s[mt][nt][i];
        bool live = true;
        if constexpr (kMasked) live = pos0 + 8 * nt + (i & 1) <= rpos[16 * mt + 8 * (i >> 1)];
        const float x = fmaf(v, c.scale2, -c.phi2);
        dev[mt][i >> 1] = fmaxf(dev[mt][i >> 1], live ? fabsf(v - c.mid) : 0.0f);
        if constexpr (kTrackMax) xmax[mt][i >> 1] = fmaxf(xmax[mt][i >> 1], live ? x : -INFINITY);
        s[mt][nt][i] = live ? fast_exp2(x) : 0.0f;
      }
}

// The chunk's weights as A fragments of P.V in PT (fp16 or bf16; k-step kk = n-tiles 2kk, 2kk+1:
// a0/a1 rows g/g+8 at positions 16kk + 2tig + {0,1}, a2/a3 the same 8 positions on), and the row
// sums of the rounded weights.
template <typename PT, int kSTiles>
__device__ __forceinline__ void chunk_pack(const float (&e)[2][kSTiles][4], uint32_t (&pa)[2][kSTiles / 2][4],
                                           float (&sum)[2][2]) {
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int kk = 0; kk < kSTiles / 2; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float (&src)[4] = e[mt][2 * kk + (r >> 1)];
        const int i = 2 * (r & 1);  // a0, a2: row g (c0, c1); a1, a3: row g + 8 (c2, c3)
        pa[mt][kk][r] = pack_weights<PT>(src[i], src[i + 1], sum[mt][r & 1]);
      }
}

// Whether every row's largest weight of the chunk fits fp16 P (PrefillTraits::kHalfPMinLog2):
// xmax reduced over the quad of lanes sharing a row, then over the warp.
__device__ __forceinline__ bool chunk_fits_half(float (&xmax)[2][2]) {
  bool ok = true;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) ok &= row_fits_half(xmax[mt][hh]);
  return __all_sync(0xffffffffu, ok);
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(PrefillTraits::kThreads, PrefillTraits::kMinBlocksPerSm)
prefill_tiled_kernel(const AttentionParams<T> p, const SoftmaxConsts sc) {
  using Tr = PrefillTraits;
  using L = PrefillSmem<T, kHeadDim>;
  constexpr int kStride = L::kStride;
  constexpr int kKSteps = kHeadDim / 16;    // k-steps of Q K^T
  constexpr int kSTiles = Tr::kScoreChunk / 8;            // n-tiles of S (8 positions) per chunk
  constexpr int kSChunks = Tr::kKvTile / Tr::kScoreChunk;  // score chunks per KV tile
  constexpr int kDPairs = kHeadDim / 16;    // pairs of n-tiles of O (16 dims)
  constexpr int kChunks = kHeadDim / 8;     // 16-byte pieces of a row
  static_assert(Tr::kKvTile * kChunks % Tr::kThreads == 0 && Tr::kBlockRows * kChunks % Tr::kThreads == 0);
  static_assert(Tr::kThreads == 2 * Tr::kKvTile && Tr::kRowsPerWarp == 32 && Tr::kKvTile % Tr::kScoreChunk == 0);
  constexpr int kKPerChunk = kSTiles / 2;   // k-steps of P.V per score chunk
  constexpr bool kHalf = std::is_same_v<T, __half>;

  extern __shared__ __align__(16) unsigned char smem[];
  T* const sq = reinterpret_cast<T*>(smem) + L::kQ;
  T* const sk = reinterpret_cast<T*>(smem) + L::kK;
  T* const sv = reinterpret_cast<T*>(smem) + L::kV;
  int32_t* const slots = reinterpret_cast<int32_t*>(smem + L::kSlotOffset);
  int32_t* const row_pos = reinterpret_cast<int32_t*>(smem + L::kRowPosOffset);
  int32_t* const warp_pos = reinterpret_cast<int32_t*>(smem + L::kWarpPosOffset);
  const uint32_t sq_u32 = smem_u32(sq), sk_u32 = smem_u32(sk), sv_u32 = smem_u32(sv);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, tig = lane % 4;
  const int h = blockIdx.x;
  const int tile = p.num_tiles - 1 - static_cast<int>(blockIdx.y);  // longest causal ranges first
  const int first = p.tiles[2 * tile], count = min(p.tiles[2 * tile + 1], Tr::kBlockRows);
  if (count <= 0) return;
  const int group = p.num_q_heads / p.kv.num_kv_heads;
  const int kv_head = h / group;
  const int64_t row_elems = int64_t{p.kv.num_kv_heads} * kHeadDim;
  const int kv_end = p.slots.positions[p.token_of(first + count - 1)] + 1;  // positions increase in a tile
  const int n_tiles = (kv_end + Tr::kKvTile - 1) / Tr::kKvTile;
  const int32_t** const s_table = reinterpret_cast<const int32_t**>(smem + L::kTableOffset);
  int32_t* const s_kv_end = reinterpret_cast<int32_t*>(smem + L::kTableOffset + sizeof(int64_t));
  const T* const k_head = p.kv.k + int64_t{kv_head} * kHeadDim;
  const T* const v_head = p.kv.v + int64_t{kv_head} * kHeadDim;

  // Slot of each position of KV tile j (-1 past the end), computed by the first kKvTile threads.
  auto fill_slots = [&](int j, int buf) {
    if (tid < Tr::kKvTile) {
      const int pos = j * Tr::kKvTile + tid;
      const int bs = p.kv.block_size;
      slots[buf * Tr::kKvTile + tid] = pos < *s_kv_end ? (*s_table)[pos / bs] * bs + pos % bs : -1;
    }
  };
  // One K or V tile into shared memory; positions past the end become zeros (their P is 0, and
  // 0 * garbage could be NaN). Two threads per position: thread tid copies row tid / 2, 16-byte
  // pieces tid % 2 + 2i, so one instruction of a warp reads 32 contiguous bytes of each of 16 rows,
  // and every offset past the row's base is an immediate.
  const int copy_row = tid / 2, copy_piece = tid % 2;
  const uint32_t copy_dst = 2 * (copy_row * kStride + copy_piece * 8);
  auto load_tile = [&](const T* head, uint32_t dst, int buf) {
    const int slot = slots[buf * Tr::kKvTile + copy_row];
    const T* src = (slot >= 0 ? head + int64_t{slot} * row_elems : head) + copy_piece * 8;
#pragma unroll
    for (int i = 0; i < kChunks / 2; ++i) cp_async_16(dst + copy_dst + 32 * i, src + 16 * i, slot >= 0);
    cp_async_commit();
  };

  if (tid == 0) {
    *s_table = p.slots.block_tables + int64_t{p.slots.token_seq[p.token_of(first)]} * p.slots.max_blocks_per_seq;
    *s_kv_end = kv_end;
  }
  __syncthreads();
  fill_slots(0, 0);
  if (tid < Tr::kBlockRows) row_pos[tid] = tid < count ? p.slots.positions[p.token_of(first + tid)] : -1;
  if (tid < Tr::kWarps) {
    const int r0 = tid * Tr::kRowsPerWarp, r1 = min(r0 + Tr::kRowsPerWarp, count) - 1;
    warp_pos[tid] = r0 < count ? p.slots.positions[p.token_of(first + r0)] : -1;
    warp_pos[Tr::kWarps + tid] = r0 < count ? p.slots.positions[p.token_of(first + r1)] : -1;
  }
  static_assert(Tr::kBlockRows <= Tr::kThreads);
  // Q rows past the tile's count are zeros.
#pragma unroll 4
  for (int it = 0; it < Tr::kBlockRows * kChunks / Tr::kThreads; ++it) {
    const int i = tid + it * Tr::kThreads, r = i / kChunks, c = i % kChunks;
    const bool ok = r < count;
    const T* src = ok ? p.q + (p.token_of(first + r) * p.num_q_heads + h) * kHeadDim + c * 8 : p.q;
    cp_async_16(sq_u32 + 2 * (r * kStride + c * 8), src, ok);
  }
  __syncthreads();  // slots of tile 0, row positions
  load_tile(k_head, sk_u32, 0);  // one group with Q

  // This warp's rows: block rows row0 + 16 mt + 8 hh + g for this lane (mt: m-tile, hh: half).
  const int row0 = warp * Tr::kRowsPerWarp;
  const int32_t* const lane_pos = row_pos + row0 + g;  // + 16 mt + 8 hh: this lane's rows

  float o[2][2 * kDPairs][4] = {};  // O fragments: m-tile, n-tile of 8 dims
  float sum[2][2] = {}, dev[2][2] = {};
  // ldmatrix lane addresses (element offsets): Q rows 0..15 of an m-tile with the k halves in
  // matrices 0,1 | 2,3; K positions 0..7 | 8..15 of an n-tile pair in matrices 0,1 | 2,3 with
  // the k halves in 0 | 1; V (transposed) positions 0..7 | 8..15 in matrices 0 | 1, dims 0..7 |
  // 8..15 in 0,1 | 2,3.
  const uint32_t q_addr = sq_u32 + 2 * ((row0 + lane % 16) * kStride + (lane / 16) * 8);
  const uint32_t k_addr = sk_u32 + 2 * (((lane / 16) * 8 + lane % 8) * kStride + ((lane / 8) % 2) * 8);
  const uint32_t v_addr = sv_u32 + 2 * ((((lane / 8) % 2) * 8 + lane % 8) * kStride + (lane / 16) * 8);

  for (int j = 0; j < n_tiles; ++j) {
    const int buf = j % 2;
    cp_async_wait_all();
    __syncthreads();  // K_j (and Q) in shared memory; every warp is done with V_{j-1}
    load_tile(v_head, sv_u32, buf);
    if (j + 1 < n_tiles) fill_slots(j + 1, buf ^ 1);
    const int tile_pos = j * Tr::kKvTile;
    const bool compute = tile_pos <= warp_pos[Tr::kWarps + warp];  // false for a warp past the count
    uint32_t pa[kSChunks][2][kKPerChunk][4];  // P as A fragments: chunk, m-tile, k-step, register
    bool half_p[kSChunks];                      // fp16 inputs: the chunk's P is fp16 (else bf16)
    if (compute) {
      const bool masked = tile_pos + Tr::kKvTile - 1 > warp_pos[warp];
#pragma unroll
      for (int sc_i = 0; sc_i < kSChunks; ++sc_i) {
        float s[2][kSTiles][4] = {};
#pragma unroll
        for (int ks = 0; ks < kKSteps; ++ks) {
          uint32_t qa[2][4];
          ldmatrix_x4(qa[0], q_addr + 2 * (ks * 16));
          ldmatrix_x4(qa[1], q_addr + 2 * (16 * kStride + ks * 16));
#pragma unroll
          for (int np = 0; np < kSTiles / 2; ++np) {
            uint32_t kb[4];
            ldmatrix_x4(kb, k_addr + 2 * ((sc_i * Tr::kScoreChunk + 16 * np) * kStride + ks * 16));
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
              mma_16816(s[mt][2 * np], qa[mt], kb[0], kb[1], T{});
              mma_16816(s[mt][2 * np + 1], qa[mt], kb[2], kb[3], T{});
            }
          }
        }
        const int pos0 = tile_pos + sc_i * Tr::kScoreChunk + 2 * tig;
        float xmax[2][2] = {{-INFINITY, -INFINITY}, {-INFINITY, -INFINITY}};
        if (masked) chunk_weights<true, kHalf>(s, dev, xmax, lane_pos, pos0, sc);
        else chunk_weights<false, kHalf>(s, dev, xmax, lane_pos, pos0, sc);
        half_p[sc_i] = kHalf && chunk_fits_half(xmax);
        if (half_p[sc_i]) chunk_pack<__half>(s, pa[sc_i], sum);
        else chunk_pack<__nv_bfloat16>(s, pa[sc_i], sum);
      }
    }
    cp_async_wait_all();
    __syncthreads();  // V_j in shared memory; every warp is done with K_j; slots of tile j+1 written
    if (j + 1 < n_tiles) load_tile(k_head, sk_u32, buf ^ 1);
    if (compute) {
#pragma unroll
      for (int kk = 0; kk < Tr::kKvTile / 16; ++kk) {
        if (!kHalf || half_p[kk / kKPerChunk]) {
          // P and V in the input dtype (bf16 P for bf16, fp16 P for fp16).
#pragma unroll
          for (int dp = 0; dp < kDPairs; ++dp) {
            uint32_t vb[4];
            ldmatrix_x4_trans(vb, v_addr + 2 * (16 * kk * kStride + 16 * dp));
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
              mma_16816(o[mt][2 * dp], pa[kk / kKPerChunk][mt][kk % kKPerChunk], vb[0], vb[1], T{});
              mma_16816(o[mt][2 * dp + 1], pa[kk / kKPerChunk][mt][kk % kKPerChunk], vb[2], vb[3], T{});
            }
          }
        } else {
          // fp16 V against bf16 P: split exactly into bf16 high + low parts, two mma each.
#pragma unroll
          for (int dp = 0; dp < kDPairs; ++dp) {
            uint32_t vb[4], hi[4], lo[4];
            ldmatrix_x4_trans(vb, v_addr + 2 * (16 * kk * kStride + 16 * dp));
#pragma unroll
            for (int r = 0; r < 4; ++r) split_f16x2(vb[r], hi[r], lo[r]);
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
              const uint32_t (&a)[4] = pa[kk / kKPerChunk][mt][kk % kKPerChunk];
              mma_16816(o[mt][2 * dp], a, hi[0], hi[1], __nv_bfloat16{});
              mma_16816(o[mt][2 * dp + 1], a, hi[2], hi[3], __nv_bfloat16{});
              mma_16816(o[mt][2 * dp], a, lo[0], lo[1], __nv_bfloat16{});
              mma_16816(o[mt][2 * dp + 1], a, lo[2], lo[3], __nv_bfloat16{});
            }
          }
        }
      }
    }
  }
  // The tile is read again rather than held in registers through the loop.
  const int e_first = p.tiles[2 * tile], e_count = min(p.tiles[2 * tile + 1], Tr::kBlockRows);
  if (row0 >= e_count) return;  // no barrier follows

  // Rows: the four lanes of a quad (tig) hold different positions.
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
#pragma unroll
      for (int off = 1; off <= 2; off <<= 1) {
        sum[mt][hh] += __shfl_xor_sync(0xffffffffu, sum[mt][hh], off);
        dev[mt][hh] = fmaxf(dev[mt][hh], __shfl_xor_sync(0xffffffffu, dev[mt][hh], off));
      }
  // O / l as T into this warp's own Q rows (read by no other warp), then 16-byte row stores.
  __syncwarp();
  int32_t* const flags = static_cast<int32_t*>(p.workspace);
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = row0 + 16 * mt + 8 * hh + g;
      const float inv = 1.0f / sum[mt][hh];
#pragma unroll
      for (int dt = 0; dt < 2 * kDPairs; ++dt) {
        T pair[2] = {from_float<T>(o[mt][dt][2 * hh] * inv), from_float<T>(o[mt][dt][2 * hh + 1] * inv)};
        *reinterpret_cast<uint32_t*>(sq + r * kStride + 8 * dt + 2 * tig) = *reinterpret_cast<const uint32_t*>(pair);
      }
      if (tig == 0 && r < e_count) flags[int64_t{e_first + r} * p.num_q_heads + h] = dev[mt][hh] > sc.half ? 1 : 0;
    }
  __syncwarp();
#pragma unroll 4
  for (int it = 0; it < Tr::kRowsPerWarp * kChunks / 32; ++it) {
    const int i = lane + 32 * it, r = row0 + i / kChunks, c = i % kChunks;
    if (r < e_count)
      *reinterpret_cast<uint4*>(p.out + (p.token_of(e_first + r) * p.num_q_heads + h) * kHeadDim + c * 8) =
          *reinterpret_cast<const uint4*>(sq + r * kStride + c * 8);
  }
}

}  // namespace fdpp::cuda::detail
