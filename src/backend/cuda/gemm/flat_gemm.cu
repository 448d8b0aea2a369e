// Flat GEMM on tensor cores (see flat_gemm.cuh): out [M, N] = x [M, K] . w [N, K]^T + ...,
// M in 1..64. Tuning constants and their reasons: flat_gemm_traits.h.
//
// Dataflow (FlashDecoding++ section 1b). A CTA of 4 warps owns 128 weight rows (kBlockN) and
// every token; warp w owns rows [32w, 32w + 32) as two 16-row mma A tiles, and the tokens are
// the mma's B operand in n-tiles of 8, so M is padded to 8 only and never tiled. K is walked in
// 64-element tiles through a kStages-deep cp.async pipeline in shared memory: each stage holds
// the 128 x 64 weight tile (16 KB) and the [MT x 8] x 64 x tile; while one stage is computed the
// next kStages - 1 are loading. Rows are 128 bytes (8 16-byte chunks); chunk c of row r is stored
// at c ^ (r % 8), so each 8-lane phase of a cp.async store or of an ldmatrix touches 8 different
// chunk columns: no bank conflicts. ldmatrix.x4 gives the A fragment of 16 rows x 16 k,
// ldmatrix.x2 the B fragment of 8 tokens x 16 k (x rows are [token][k], the mma's "col" B), and
// mma.sync.m16n8k16 accumulates in fp32: the accumulator's rows are weight rows, its columns
// tokens. Weights are copied with an L2 evict-first policy (read once), x with the default one
// (every CTA along N reads it again).
//
// Grid (splits, ceil(N / 128)); CTA (s, b) computes rows [128b, 128b + 128) over the s-th of
// `splits` near-equal ranges of K tiles. The `splits` CTAs of a row block form one thread-block
// cluster: after the main loop each CTA writes its fp32 partial tile [tokens][128] to its own
// shared memory, the cluster synchronises, and CTA s sums token rows s, s + splits, ... over
// ranks 0..splits-1 in that fixed order through distributed shared memory, adds bias and
// residual, rounds once and stores. Deterministic, no atomics, no workspace, one launch.
// splits = 1 (N >= 128 x SMs) is the same code with clusters of one CTA.
//
// Predicted bandwidth on the H100 SXM (3.0 TB/s read ceiling, DESIGN.md section 2):
//  * In flight: 48-64 KB of weights per CTA, 2 CTAs per SM, and the plan gives every SM at
//    least one CTA: >= 6 MB GPU-wide, twice what HBM latency asks. The stream should run at the
//    copy-kernel rate, ~2.9 TB/s.
//  * Issue per 16 KB weight tile and warp: 8 ldmatrix.x4 + 4 x m_tiles ldmatrix.x2 + 8 x m_tiles
//    mma + ~12 cp.async: light at M <= 16. At M = 64 the SM runs ~0.2 mma per clock and reads
//    ~70 B/clk of shared memory (of 128) while streaming: busy, still bandwidth-bound.
//  * Fixed cost per launch: launch + first-tile latency + the cluster reduction and stores,
//    ~2 us timed alone, ~1 us back to back.
// Prediction per launch, M <= 16 (bytes / 2.9 TB/s + 2 us):
//   [4096, 4096]    33.6 MB: ~13.6 us, ~82% of 3.0 TB/s (~88% back to back)
//   [6144, 4096]    50.3 MB: ~19.4 us, ~86%
//   [12288, 4096]  100.7 MB: ~36.7 us, ~91%
//   [4096, 11008]   90.2 MB: ~33.1 us, ~91%
//   [4096, 14336]  117.4 MB: ~42.5 us, ~92%
//   [22016, 4096]  180.4 MB: ~64.2 us, ~94%
//   [28672, 4096]  234.9 MB: ~83.0 us, ~94%
//   [128256, 4096]  1.05 GB: ~364 us, ~96%
#include <cooperative_groups.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>

#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/gemm/flat_gemm.cuh"
#include "backend/cuda/gemm/flat_gemm_traits.h"
#include "backend/cuda/ptx.cuh"

namespace fdpp::cuda {
namespace {

namespace cg = cooperative_groups;
using detail::cp_async_16;
using detail::cp_async_commit;
using detail::smem_u32;
using Traits = FlatGemmTraits;

static_assert(kFlatGemmMaxM == Traits::kMaxM, "flat_gemm.cuh and the traits disagree on the largest M");

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
  static constexpr int kPartStride = Traits::kBlockN + Traits::kPartialPad;  // floats
  static constexpr int kRowsPerPass = Traits::kThreads / kChunks;   // rows one cp.async pass covers: 16
  static constexpr int kWPasses = Traits::kBlockN / kRowsPerPass;   // 8
  static constexpr int kXPasses = (MT * 8 + kRowsPerPass - 1) / kRowsPerPass;

  static_assert(kChunks % 8 == 0, "the swizzle c ^ (r % 8) permutes groups of 8 chunks (128 bytes)");
  static_assert(kRowsPerPass % 8 == 0, "a thread's rows must share r % 8 (one swizzle per thread)");
  static_assert(MT * 8 * kPartStride * 4 <= kSmemBytes, "the partial tile reuses the pipeline's memory");
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
// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
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

// d [16 x 8] += a [16 x 16] . b [16 x 8], fp32 accumulators.
template <typename T> struct Mma;
template <>
struct Mma<__half> {
  static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};
template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};

// ---- the kernel ----------------------------------------------------------------------------

// Grid (splits, ceil(N / kBlockN)), clusters of (splits, 1, 1), Traits::kThreads threads,
// Layout<MT>::kSmemBytes of dynamic shared memory. m_tiles = ceil(M / 8) <= MT; k_tiles =
// ceil(K / kKTile).
template <typename T, int MT>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinCtasPerSm)
flat_gemm_kernel(const FlatGemmParams<T> p, const int m_tiles, const int k_tiles) {
  using L = Layout<MT>;
  constexpr int kStages = L::kStages;
  constexpr int kRowTiles = Traits::kRowTilesPerWarp;
  extern __shared__ __align__(128) unsigned char smem[];

  cg::cluster_group cluster = cg::this_cluster();
  const int split = static_cast<int>(blockIdx.x);  // == cluster.block_rank(): clusters span x
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
          for (int i = 0; i < kRowTiles; ++i) Mma<T>::run(acc[i][j], a[i], b);
        }
      }
    }
    read_stage = read_stage + 1 == kStages ? 0 : read_stage + 1;
    write_stage = write_stage + 1 == kStages ? 0 : write_stage + 1;
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with the stages: the partial tile may overwrite them

  // Partial tile [x_rows][kPartStride] fp32, token-major. Accumulator element e of lane
  // (g = lane / 4, q = lane % 4) is weight row g (+ 8 for e >= 2) and token 2q (+ 1 for odd e).
  float* part = reinterpret_cast<float*>(smem);
  const int g = lane / 4, q = lane % 4;
#pragma unroll
  for (int i = 0; i < kRowTiles; ++i) {
    const int row = warp * kRowTiles * 16 + i * 16 + g;
#pragma unroll
    for (int j = 0; j < MT; ++j) {
      if (j < m_tiles) {
        const int token = j * 8 + 2 * q;
        part[token * L::kPartStride + row] = acc[i][j][0];
        part[(token + 1) * L::kPartStride + row] = acc[i][j][1];
        part[token * L::kPartStride + row + 8] = acc[i][j][2];
        part[(token + 1) * L::kPartStride + row + 8] = acc[i][j][3];
      }
    }
  }
  cluster.sync();  // every CTA's partial tile is written and visible to the cluster

  // CTA `split` finishes token rows split, split + splits, ...: thread tid takes row n0 + tid.
  // Remote (distributed shared memory) loads take ~200 cycles: every rank's value of
  // kReduceBatch token rows is loaded before any is added, so a thread waits once per batch.
  static_assert(Traits::kBlockN == Traits::kThreads, "one output row (feature) per thread");
  constexpr int kBatch = Traits::kReduceBatch;
  const int64_t n = n0 + tid;
  const int my_rows = M > split ? (M - split + splits - 1) / splits : 0;
  if (n < N) {
    const float bias = p.bias != nullptr ? to_float(p.bias[n]) : 0.0f;
    for (int b0 = 0; b0 < my_rows; b0 += kBatch) {
      float v[kBatch][Traits::kMaxSplits];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        float* mine = part + (split + (b0 + b) * splits) * L::kPartStride + tid;
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
        y += bias;
        const int64_t o = int64_t{m} * N + n;
        if (p.residual != nullptr) y += to_float(p.residual[o]);  // may alias out: read before the store
        if (p.out_f32 != nullptr) {
          p.out_f32[o] = y;
        } else {
          p.out[o] = from_float<T>(y);
        }
      }
    }
  }
  cluster.sync();  // peers may still be reading this CTA's partial tile: stay resident until done
}

// ---- host side -----------------------------------------------------------------------------

// Per device and variant: the SM count and how many clusters of each size fit at once.
struct DeviceCapacity {
  int sms = 0;
  int clusters[Traits::kMaxSplits + 1] = {};  // clusters[s]: co-resident clusters of s CTAs
};

// Split-K policy (flat_gemm_traits.h): no split once the row blocks alone give every SM
// kSplitTargetCtasPerSm CTAs; otherwise the fewest splits that do, capped by the cluster size,
// by kMinKTilesPerSplit tiles per split, and by one wave (every cluster resident at once, so the
// partial sums of a cluster never wait on a later wave).
int choose_splits(int n_blocks, int k_tiles, const DeviceCapacity& cap) {
  const int target = cap.sms * Traits::kSplitTargetCtasPerSm;
  if (n_blocks >= target) return 1;
  int s = std::min(Traits::kMaxSplits, (target + n_blocks - 1) / n_blocks);
  s = std::min(s, std::max(1, k_tiles / Traits::kMinKTilesPerSplit));
  while (s > 1 && cap.clusters[s] < n_blocks) --s;
  return s;
}

template <typename T, int MT>
Status device_capacity(const DeviceCapacity** out) {
  static std::mutex mu;
  static std::unordered_map<int, DeviceCapacity> by_device;  // node-based: pointers stay valid
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    (void)cudaGetLastError();
    return {ErrorCode::kInternal, "flat_gemm: no current CUDA device"};
  }
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = by_device.find(device); it != by_device.end()) {
    *out = &it->second;
    return Status::ok();
  }
  auto* kernel = flat_gemm_kernel<T, MT>;
  constexpr int kSmem = Layout<MT>::kSmemBytes;
  DeviceCapacity cap;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem) != cudaSuccess ||
      cudaDeviceGetAttribute(&cap.sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    const cudaError_t err = cudaGetLastError();
    return {ErrorCode::kInternal, std::string("flat_gemm: kernel setup failed: ") + cudaGetErrorString(err)};
  }
  for (int s = 1; s <= Traits::kMaxSplits; ++s) {
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = static_cast<unsigned>(s);
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(static_cast<unsigned>(s), 1, 1);
    config.blockDim = dim3(Traits::kThreads, 1, 1);
    config.dynamicSmemBytes = kSmem;
    config.attrs = &attr;
    config.numAttrs = 1;
    if (cudaOccupancyMaxActiveClusters(&cap.clusters[s], kernel, &config) != cudaSuccess) {
      (void)cudaGetLastError();  // this cluster size cannot run: never chosen
      cap.clusters[s] = 0;
    }
  }
  if (cap.clusters[1] < 1) return {ErrorCode::kInternal, "flat_gemm: the kernel cannot be resident on this device"};
  *out = &by_device.emplace(device, cap).first->second;
  return Status::ok();
}

int m_class_for(int m_tiles) { return m_tiles <= 1 ? 1 : m_tiles <= 2 ? 2 : m_tiles <= 4 ? 4 : 8; }

template <typename T>
Status capacity_for_class(int m_class, const DeviceCapacity** cap) {
  switch (m_class) {
    case 1: return device_capacity<T, 1>(cap);
    case 2: return device_capacity<T, 2>(cap);
    case 4: return device_capacity<T, 4>(cap);
    default: return device_capacity<T, 8>(cap);
  }
}

int smem_for_class(int m_class) {
  switch (m_class) {
    case 1: return Layout<1>::kSmemBytes;
    case 2: return Layout<2>::kSmemBytes;
    case 4: return Layout<4>::kSmemBytes;
    default: return Layout<8>::kSmemBytes;
  }
}

bool overlaps(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
  const auto a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return a0 < b0 + static_cast<uintptr_t>(b_bytes) && b0 < a0 + static_cast<uintptr_t>(a_bytes);
}

// Argument checks shared by plan and launch. Sets *nothing_to_do for M == 0 or N == 0.
template <typename T>
Status validate(const FlatGemmParams<T>& p, bool* nothing_to_do) {
  *nothing_to_do = false;
  if (p.M < 0 || p.N < 0 || p.K < 0) return {ErrorCode::kInvalidArgument, "flat_gemm: negative M, N or K"};
  if (p.M > kFlatGemmMaxM)
    return {ErrorCode::kInvalidArgument, "flat_gemm: M = " + std::to_string(p.M) +
                                             " rows; the flat GEMM serves M <= " + std::to_string(kFlatGemmMaxM)};
  if (p.K > (int64_t{1} << 30))
    return {ErrorCode::kInvalidArgument, "flat_gemm: K = " + std::to_string(p.K) + " is too large"};
  if ((p.N + Traits::kBlockN - 1) / Traits::kBlockN > 65535)
    return {ErrorCode::kInvalidArgument, "flat_gemm: N = " + std::to_string(p.N) + " is too large (grid.y)"};
  if ((p.out == nullptr) == (p.out_f32 == nullptr))
    return {ErrorCode::kInvalidArgument, "flat_gemm: set exactly one of out and out_f32"};
  if (p.M == 0 || p.N == 0) {
    *nothing_to_do = true;
    return Status::ok();
  }
  if (p.K > 0) {
    if (p.x == nullptr || p.w == nullptr) return {ErrorCode::kInvalidArgument, "flat_gemm: x and w are required"};
    if (p.K % 8 != 0)
      return {ErrorCode::kInvalidArgument, "flat_gemm: K = " + std::to_string(p.K) +
                                               " is not a multiple of 8 (rows must be whole 16-byte chunks)"};
    if (!is_aligned16(p.x) || !is_aligned16(p.w))
      return {ErrorCode::kInvalidArgument, "flat_gemm: x and w must be 16-byte aligned"};
    const int64_t out_bytes = p.M * p.N * (p.out_f32 != nullptr ? 4 : int64_t{sizeof(T)});
    const void* out = p.out_f32 != nullptr ? static_cast<const void*>(p.out_f32) : static_cast<const void*>(p.out);
    if (overlaps(p.x, p.M * p.K * int64_t{sizeof(T)}, out, out_bytes))
      return {ErrorCode::kInvalidArgument, "flat_gemm: x overlaps the output"};
  }
  return Status::ok();
}

template <typename T>
Status make_plan(const FlatGemmParams<T>& p, FlatGemmPlan* plan) {
  FlatGemmPlan r;
  r.m_tiles = static_cast<int>((p.M + 7) / 8);
  r.m_class = m_class_for(r.m_tiles);
  r.n_blocks = static_cast<int>((p.N + Traits::kBlockN - 1) / Traits::kBlockN);
  r.k_tiles = static_cast<int>((p.K + Traits::kKTile - 1) / Traits::kKTile);
  r.smem_bytes = smem_for_class(r.m_class);
  const DeviceCapacity* cap = nullptr;
  if (Status st = capacity_for_class<T>(r.m_class, &cap); !st.is_ok()) return st;
  r.splits = choose_splits(r.n_blocks, r.k_tiles, *cap);
  *plan = r;
  return Status::ok();
}

template <typename T, int MT>
Status launch_variant(const FlatGemmParams<T>& p, const FlatGemmPlan& plan, cudaStream_t stream) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = static_cast<unsigned>(plan.splits);
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(plan.splits), static_cast<unsigned>(plan.n_blocks), 1);
  config.blockDim = dim3(Traits::kThreads, 1, 1);
  config.dynamicSmemBytes = static_cast<size_t>(Layout<MT>::kSmemBytes);
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = 1;
  const cudaError_t err = cudaLaunchKernelEx(&config, flat_gemm_kernel<T, MT>, p, plan.m_tiles, plan.k_tiles);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return {ErrorCode::kInternal, std::string("flat_gemm: launch failed: ") + cudaGetErrorString(err)};
  }
  return last_launch_status("flat_gemm");
}

}  // namespace

template <typename T>
Status plan_flat_gemm(const FlatGemmParams<T>& p, FlatGemmPlan* plan) {
  bool nothing_to_do = false;
  if (Status st = validate(p, &nothing_to_do); !st.is_ok()) return st;
  if (nothing_to_do) {
    *plan = FlatGemmPlan{};
    return Status::ok();
  }
  return make_plan(p, plan);
}

template <typename T>
Status launch_flat_gemm(const FlatGemmParams<T>& p, cudaStream_t stream) {
  bool nothing_to_do = false;
  if (Status st = validate(p, &nothing_to_do); !st.is_ok()) return st;
  if (nothing_to_do) return Status::ok();
  FlatGemmPlan plan;
  if (Status st = make_plan(p, &plan); !st.is_ok()) return st;
  switch (plan.m_class) {
    case 1: return launch_variant<T, 1>(p, plan, stream);
    case 2: return launch_variant<T, 2>(p, plan, stream);
    case 4: return launch_variant<T, 4>(p, plan, stream);
    default: return launch_variant<T, 8>(p, plan, stream);
  }
}

template Status plan_flat_gemm<__half>(const FlatGemmParams<__half>&, FlatGemmPlan*);
template Status plan_flat_gemm<__nv_bfloat16>(const FlatGemmParams<__nv_bfloat16>&, FlatGemmPlan*);
template Status launch_flat_gemm<__half>(const FlatGemmParams<__half>&, cudaStream_t);
template Status launch_flat_gemm<__nv_bfloat16>(const FlatGemmParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
