// Flat GEMM on tensor cores (see flat_gemm.cuh): out [M, N] = x [M, K] . w [N, K]^T + ...,
// M in 1..64. Tuning constants and their reasons: flat_gemm_traits.h.
//
// Dataflow (FlashDecoding++ section 1b). A CTA of 4 warps owns 128 weight rows (kBlockN) and
// every token; warp w owns rows [32w, 32w + 32) as two 16-row mma A tiles, and the tokens are
// the mma's B operand in n-tiles of 8, so M is padded to 8 only and never tiled;
// mma.sync.m16n8k16 accumulates in fp32, the accumulator's rows are weight rows, its columns
// tokens. K is walked in 64-element steps by one of two mainloops:
//  * streamed (flat_gemm_streamed.cuh; M <= 16, the decode batch sizes): 16-byte weight loads go
//    straight into A fragments through a K permutation inside each 32-element chunk, x comes
//    through L1, and the next step's loads are in flight while this step's mmas run (registers
//    double-buffered): the GEMV's memory pattern with tensor-core math, no barrier in the loop.
//    It alone takes the RMSNorm prologue (x * g on load, sums of squares beside the products).
//  * pipelined (flat_gemm_pipelined.cuh; any M <= 64): a kStages-deep cp.async pipeline of
//    128 x 64 weight tiles and [M] x 64 x tiles in swizzled shared memory, read by ldmatrix.
// Both split K. Grid (splits, row blocks); CTA (s, b) computes row block b (16 rows streamed, 128
// pipelined) over the s-th of `splits` near-equal ranges of K steps, and the `splits` CTAs of a
// row block form one thread-block cluster whose fp32 partial tiles [tokens][rows] meet through
// distributed shared memory, added over ranks 0..splits-1 in that fixed order before 1/rms, bias
// and residual and the one rounding. Pipelined: each CTA keeps its partial, the cluster
// synchronises, and CTA s finishes token rows s, s + splits, ... by reading the others'. Streamed:
// CTAs s > 0 write their partials into CTA 0's shared memory and leave, and CTA 0, counting them
// in on an mbarrier, finishes every token (flat_gemm_streamed.cuh). Deterministic, no atomics, no
// workspace, one launch. How many splits: flat_gemm_traits.h (FlatGemmParams::splits forces a
// count).
//
// Predicted bandwidth on the H100 SXM (3.0 TB/s read ceiling, DESIGN.md section 2).
//  * Pipelined: 48-64 KB of weights in flight per CTA, 2 CTAs per SM. Measured 63-79% at M <= 16
//    (docs/PERF.md), against ~82-96% predicted: the per-tile barrier and the shared-memory round
//    trip leave the stream idle between tiles.
//  * Streamed: 4 KB in flight per warp, 16 warps per SM where the grid allows (64 KB per SM),
//    with split K up to 4 CTAs per SM on the N = 4096 shapes; per step and warp 8 loads and
//    8 x m_tiles mmas, so the issue rate is the GEMV's at M = 1. It should stream like the GEMV
//    at M = 1 (measured 95% on [12288, 4096], 76% on [4096, 4096]): bytes / 2.9 TB/s + ~2 us:
//   [4096, 4096]    33.6 MB: ~13.6 us, ~82% of 3.0 TB/s (the fixed cost is 15% of it)
//   [12288, 4096]  100.7 MB: ~36.7 us, ~91%
//   [4096, 11008]   90.2 MB: ~33.1 us, ~91%
//   [22016, 4096]  180.4 MB: ~64.2 us, ~94%
//   [128256, 4096]  1.05 GB: ~364 us, ~96%
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/gemm/flat_gemm.cuh"
#include "backend/cuda/gemm/flat_gemm_pipelined.cuh"
#include "backend/cuda/gemm/flat_gemm_streamed.cuh"
#include "backend/cuda/gemm/flat_gemm_traits.h"
#include "backend/cuda/launch.cuh"

namespace fdpp::cuda {
namespace {

using namespace flat_gemm_detail;

// ---- host side -----------------------------------------------------------------------------

template <typename T>
using KernelFn = void (*)(FlatGemmParams<T>, int, int);

// The streamed kernel of one variant: n-tiles class, norm prologue, split K.
template <typename T, int MT, bool kSplit, bool kRope>
KernelFn<T> streamed_kernel_for(int norm) {
  switch (norm) {
    case kWeightedNorm: return flat_gemm_streamed_kernel<T, MT, kWeightedNorm, kSplit, kRope>;
    case kScaleOnlyNorm: return flat_gemm_streamed_kernel<T, MT, kScaleOnlyNorm, kSplit, kRope>;
    default: return flat_gemm_streamed_kernel<T, MT, kNoNorm, kSplit, kRope>;
  }
}

// Whether a streamed launch has a deep-ring variant (flat_gemm_traits.h): one split, and two
// n-tiles with no norm prologue or QKV epilogue, or one n-tile with any but the weighted norm.
bool has_deep_variant(int m_class, int norm, bool split, bool rope) {
  if (split) return false;
  return m_class == 2 ? norm == kNoNorm && !rope : norm != kWeightedNorm;
}

// The deep variant of a launch where has_deep_variant.
template <typename T>
KernelFn<T> deep_kernel_for(int m_class, int norm, bool rope) {
  constexpr int B = Traits::kStreamedDeepBuffers;
  if (m_class == 2) return flat_gemm_streamed_kernel<T, 2, kNoNorm, false, false, B>;
  if (rope)
    return norm == kScaleOnlyNorm ? flat_gemm_streamed_kernel<T, 1, kScaleOnlyNorm, false, true, B>
                                  : flat_gemm_streamed_kernel<T, 1, kNoNorm, false, true, B>;
  return norm == kScaleOnlyNorm ? flat_gemm_streamed_kernel<T, 1, kScaleOnlyNorm, false, false, B>
                                : flat_gemm_streamed_kernel<T, 1, kNoNorm, false, false, B>;
}

// The QKV epilogue (rope) has one n-tiles class: validate_rope_store limits M to kFlatGemmRopeMaxM.
static_assert(kFlatGemmRopeMaxM <= 8, "the QKV epilogue's variants have one n-tile (8 tokens)");
template <typename T, bool kSplit>
KernelFn<T> streamed_kernel_for(int m_class, int norm, bool rope) {
  if (rope) return streamed_kernel_for<T, 1, kSplit, true>(norm);
  return m_class <= 1 ? streamed_kernel_for<T, 1, kSplit, false>(norm) : streamed_kernel_for<T, 2, kSplit, false>(norm);
}

// Which norm the streamed kernel applies for these parameters (StreamedNorm).
template <typename T>
int norm_of(const FlatGemmParams<T>& p) {
  return p.norm_weight == nullptr ? kNoNorm : p.norm_scale_only ? kScaleOnlyNorm : kWeightedNorm;
}

// The kernel of one variant: mainloop, n-tiles class, norm prologue (streamed only), split K
// (streamed only: the pipelined kernel serves any split count).
// buffers: the streamed kernel's weight buffers (Traits::kStreamedDeepBuffers only where
// has_deep_variant).
template <typename T>
KernelFn<T> kernel_for(bool streamed, int m_class, int norm, bool split, bool rope, int buffers = 2) {
  if (streamed && buffers == Traits::kStreamedDeepBuffers && has_deep_variant(m_class, norm, split, rope))
    return deep_kernel_for<T>(m_class, norm, rope);
  if (streamed)
    return split ? streamed_kernel_for<T, true>(m_class, norm, rope) : streamed_kernel_for<T, false>(m_class, norm, rope);
  switch (m_class) {
    case 1: return flat_gemm_pipelined_kernel<T, 1>;
    case 2: return flat_gemm_pipelined_kernel<T, 2>;
    case 4: return flat_gemm_pipelined_kernel<T, 4>;
    default: return flat_gemm_pipelined_kernel<T, 8>;
  }
}

// Dynamic shared memory of a launch; the streamed kernel's grows with the split count (rank 0's
// receive slots).
int smem_for(bool streamed, int m_class, int splits = 1) {
  if (streamed) return m_class <= 1 ? StreamedSmem<1>::bytes_for(splits) : StreamedSmem<2>::bytes_for(splits);
  switch (m_class) {
    case 1: return Layout<1>::kSmemBytes;
    case 2: return Layout<2>::kSmemBytes;
    case 4: return Layout<4>::kSmemBytes;
    default: return Layout<8>::kSmemBytes;
  }
}

// Per device and kernel: the SM count and how many clusters of each size fit at once.
struct DeviceCapacity {
  int sms = 0;
  int clusters[Traits::kMaxSplits + 1] = {};  // clusters[s]: co-resident clusters of s CTAs
};
static_assert(Traits::kMaxSplits == kFlatGemmMaxSplits, "flat_gemm.cuh and the traits disagree on the cluster size");

// Split-K policy (flat_gemm_traits.h): no split once the row blocks alone give every SM
// `ctas_per_sm` CTAs; otherwise the fewest splits that do, capped by the cluster size, by
// `min_tiles_per_split` steps per split, and by one wave (every cluster resident at once, so the
// partial sums of a cluster never wait on a later wave).
int choose_splits(int n_blocks, int k_tiles, int ctas_per_sm, int min_tiles_per_split, const DeviceCapacity& cap) {
  const int target = cap.sms * ctas_per_sm;
  if (n_blocks >= target) return 1;
  int s = std::min(Traits::kMaxSplits, (target + n_blocks - 1) / n_blocks);
  s = std::min(s, std::max(1, k_tiles / min_tiles_per_split));
  while (s > 1 && cap.clusters[s] < n_blocks) --s;
  return s;
}

// Sets the kernel's shared-memory limit and measures its cluster occupancy, once per (device,
// kernel).
template <typename T>
Status device_capacity(KernelFn<T> kernel, int smem, const DeviceCapacity** out) {
  static std::mutex mu;
  static std::map<std::pair<int, const void*>, DeviceCapacity> cache;  // node-based: pointers stay valid
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    (void)cudaGetLastError();
    return {ErrorCode::kInternal, "flat_gemm: no current CUDA device"};
  }
  const auto key = std::make_pair(device, reinterpret_cast<const void*>(kernel));
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(key); it != cache.end()) {
    *out = &it->second;
    return Status::ok();
  }
  DeviceCapacity cap;
  // The limit never goes below the 48 KB default: a streamed launch with more splits than the
  // query's asks for a few KB more.
  constexpr int kDefaultLimit = 48 * 1024;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, std::max(smem, kDefaultLimit)) !=
          cudaSuccess ||
      cudaDeviceGetAttribute(&cap.sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    const cudaError_t err = cudaGetLastError();
    return {ErrorCode::kInternal, std::string("flat_gemm: kernel setup failed: ") + cudaGetErrorString(err)};
  }
  for (int s = 1; s <= Traits::kMaxSplits; ++s) {
    cudaLaunchAttribute attr = cluster_attribute(static_cast<unsigned>(s));
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(static_cast<unsigned>(s), 1, 1);
    config.blockDim = dim3(Traits::kThreads, 1, 1);
    config.dynamicSmemBytes = static_cast<size_t>(smem);
    config.attrs = &attr;
    config.numAttrs = 1;
    if (cudaOccupancyMaxActiveClusters(&cap.clusters[s], kernel, &config) != cudaSuccess) {
      (void)cudaGetLastError();  // this cluster size cannot run: never chosen
      cap.clusters[s] = 0;
    }
  }
  if (cap.clusters[1] < 1) return {ErrorCode::kInternal, "flat_gemm: the kernel cannot be resident on this device"};
  *out = &cache.emplace(key, cap).first->second;
  return Status::ok();
}

// Whether kAuto plans split K on the streamed mainloop: FDPP_FLAT_GEMM_SPLIT_K=1 or 0 overrides
// Traits::kStreamedSplitByDefault, so that one binary times both policies end to end. Read once.
bool streamed_split_enabled() {
  static const bool enabled = [] {
    const int v = env_switch("FDPP_FLAT_GEMM_SPLIT_K");
    return v == 1 ? true : v == 0 ? false : Traits::kStreamedSplitByDefault;
  }();
  return enabled;
}

// Whether kAuto plans may take the deep ring: FDPP_FLAT_GEMM_DEEP=0 turns it off, so that one
// binary times both end to end. Read once.
bool streamed_deep_enabled() {
  static const bool enabled = env_switch("FDPP_FLAT_GEMM_DEEP") != 0;
  return enabled;
}

int m_class_for(int m_tiles) { return m_tiles <= 1 ? 1 : m_tiles <= 2 ? 2 : m_tiles <= 4 ? 4 : 8; }

// The QKV epilogue's own conditions (validate checks the shared ones).
template <typename T>
Status validate_rope_store(const FlatGemmParams<T>& p) {
  const RopeStore<T>& s = p.rope;
  if (p.M > kFlatGemmRopeMaxM || p.mainloop == FlatGemmMainloop::kPipelined)
    return {ErrorCode::kUnsupported, "flat_gemm: the QKV epilogue needs the streamed mainloop and M <= " +
                                         std::to_string(kFlatGemmRopeMaxM)};
  return check_rope_store("flat_gemm", s, p.N, 16,
                          p.out != nullptr || p.out_f32 != nullptr || p.residual != nullptr || p.gated_silu);
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
  // Row blocks run along grid.y (at most 65535): 16 rows each when the streamed mainloop may run.
  const int64_t rows_per_block = p.M <= kFlatGemmStreamedMaxM && p.mainloop != FlatGemmMainloop::kPipelined
                                     ? Traits::kStreamedRows
                                     : Traits::kBlockN;
  if ((p.N + rows_per_block - 1) / rows_per_block > 65535)
    return {ErrorCode::kInvalidArgument, "flat_gemm: N = " + std::to_string(p.N) + " is too large (" +
                                             std::to_string(rows_per_block) + "-row blocks along grid.y)"};
  if (p.splits < 0 || p.splits > kFlatGemmMaxSplits)
    return {ErrorCode::kInvalidArgument, "flat_gemm: splits = " + std::to_string(p.splits) + "; expected 0 (the plan's) to " +
                                             std::to_string(kFlatGemmMaxSplits)};
  if (p.weight_buffers != 0 && p.weight_buffers != 2 && p.weight_buffers != Traits::kStreamedDeepBuffers)
    return {ErrorCode::kInvalidArgument, "flat_gemm: weight_buffers = " + std::to_string(p.weight_buffers) +
                                             "; expected 0 (the plan's), 2 or " +
                                             std::to_string(Traits::kStreamedDeepBuffers)};
  const bool rope = p.rope.q_out != nullptr;
  if (rope) {
    if (const Status st = validate_rope_store(p); !st.is_ok()) return st;
  } else if ((p.out == nullptr) == (p.out_f32 == nullptr)) {
    return {ErrorCode::kInvalidArgument, "flat_gemm: set exactly one of out and out_f32"};
  }
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
    const int64_t out_cols = rope ? int64_t{p.rope.num_q_heads} * p.rope.head_dim : p.gated_silu ? p.N / 2 : p.N;
    const int64_t out_bytes = p.M * out_cols * (p.out_f32 != nullptr ? 4 : int64_t{sizeof(T)});
    const void* out = rope                  ? static_cast<const void*>(p.rope.q_out)
                      : p.out_f32 != nullptr ? static_cast<const void*>(p.out_f32)
                                             : static_cast<const void*>(p.out);
    if (ranges_overlap(p.x, p.M * p.K * int64_t{sizeof(T)}, out, out_bytes))
      return {ErrorCode::kInvalidArgument, "flat_gemm: x overlaps the output"};
  }
  if (p.mainloop == FlatGemmMainloop::kStreamed && p.M > kFlatGemmStreamedMaxM)
    return {ErrorCode::kInvalidArgument, "flat_gemm: M = " + std::to_string(p.M) +
                                             "; the streamed mainloop serves M <= " +
                                             std::to_string(kFlatGemmStreamedMaxM)};
  if (p.gated_silu && (p.M > kFlatGemmStreamedMaxM || p.mainloop == FlatGemmMainloop::kPipelined ||
                       p.N % 2 != 0 || p.residual != nullptr))
    return {ErrorCode::kUnsupported, "flat_gemm: the gated SiLU epilogue needs the streamed mainloop (M <= " +
                                         std::to_string(kFlatGemmStreamedMaxM) + "), an even N (found " +
                                         std::to_string(p.N) + ") and no residual"};
  if (p.norm_weight != nullptr &&
      (p.mainloop == FlatGemmMainloop::kPipelined || !flat_gemm_can_fuse_norm(p.M, p.K, p.x, p.w, p.norm_weight)))
    return {ErrorCode::kUnsupported, "flat_gemm: the norm prologue needs the streamed mainloop: M <= " +
                                         std::to_string(kFlatGemmStreamedMaxM) +
                                         ", K a positive multiple of 8 and 16-byte aligned x, w and norm weight"};
  return Status::ok();
}

// The streamed kernels keep x in L1 and need only a few KB of shared memory per CTA, so the
// carveout asks for just enough shared memory for kStreamedCarveoutCtas CTAs per SM (plus the
// 1 KB per CTA the system reserves) and leaves the rest to L1. Not "max L1": that picks the 8 KB
// configuration, which held the kernel to 1-2 CTAs per SM (ncu, 2026-11-23). Once per kernel.
template <typename T>
void set_streamed_carveout(KernelFn<T> kernel, int smem_bytes) {
  static std::mutex mu;
  static std::map<const void*, bool> done;
  std::lock_guard<std::mutex> lock(mu);
  if (done[reinterpret_cast<const void*>(kernel)]) return;
  done[reinterpret_cast<const void*>(kernel)] = true;
  constexpr int kSmemPerSm = 228 * 1024;  // H100; a smaller SM only rounds the percentage up
  const int want = Traits::kStreamedCarveoutCtas * (smem_bytes + 1024);
  const int percent = std::min(100, (100 * want + kSmemPerSm - 1) / kSmemPerSm);
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, percent) != cudaSuccess)
    (void)cudaGetLastError();  // a hint only
}

// The streamed plan's weight buffers (flat_gemm_traits.h): forced, or the deep ring where the
// launch has a deep variant and every CTA of its grid is resident at once with it (its register
// limit allows fewer CTAs per SM), else 2. After the split count.
template <typename T>
Status choose_weight_buffers(const FlatGemmParams<T>& p, FlatGemmPlan* r) {
  const int norm = norm_of(p);
  const bool rope = p.rope.q_out != nullptr;
  const bool deep_exists = r->streamed && has_deep_variant(r->m_class, norm, r->splits > 1, rope);
  if (p.weight_buffers == Traits::kStreamedDeepBuffers && !deep_exists)
    return {ErrorCode::kUnsupported, "flat_gemm: the deep weight ring (weight_buffers = " +
                                         std::to_string(Traits::kStreamedDeepBuffers) +
                                         ") serves one split on the streamed mainloop: M <= 8 without the weighted "
                                         "norm, or M 9.." + std::to_string(kFlatGemmStreamedMaxM) +
                                         " without a norm prologue or the QKV epilogue; found M = " +
                                         std::to_string(p.M) + ", splits = " + std::to_string(r->splits) +
                                         (r->streamed ? "" : ", the pipelined mainloop")};
  if (!r->streamed) {
    r->weight_buffers = 0;  // the pipelined mainloop's ring is in shared memory
    return Status::ok();
  }
  r->weight_buffers = p.weight_buffers != 0 ? p.weight_buffers : 2;
  const bool plan_decides = p.weight_buffers == 0 && deep_exists && streamed_deep_enabled();
  if (r->weight_buffers != Traits::kStreamedDeepBuffers && !plan_decides) return Status::ok();
  // The deep kernel's carveout, before its occupancy query (the carveout bounds it).
  const KernelFn<T> deep = kernel_for<T>(true, r->m_class, norm, false, rope, Traits::kStreamedDeepBuffers);
  set_streamed_carveout<T>(deep, r->smem_bytes);
  if (plan_decides) {
    const DeviceCapacity* cap = nullptr;
    if (Status st = device_capacity<T>(deep, r->smem_bytes, &cap); !st.is_ok()) return st;
    if (r->n_blocks <= cap->clusters[1]) r->weight_buffers = Traits::kStreamedDeepBuffers;
  }
  return Status::ok();
}

template <typename T>
Status make_plan(const FlatGemmParams<T>& p, FlatGemmPlan* plan) {
  FlatGemmPlan r;
  r.m_tiles = static_cast<int>((p.M + 7) / 8);
  r.streamed = p.mainloop == FlatGemmMainloop::kStreamed ||
               (p.mainloop == FlatGemmMainloop::kAuto && p.M <= kFlatGemmStreamedMaxM);
  r.m_class = m_class_for(r.m_tiles);
  r.smem_bytes = smem_for(r.streamed, r.m_class);
  const int norm = norm_of(p);
  const bool rope = p.rope.q_out != nullptr;
  // The split kernel's shared memory for the policy's usual 2 splits (the streamed kernel's one
  // receive slot): its carveout and its occupancy query are sized for it, so a forced higher
  // count may leave fewer CTAs per SM.
  const int split_smem = smem_for(r.streamed, r.m_class, 2);
  if (r.streamed) {  // one row tile per CTA (flat_gemm_streamed.cuh)
    r.n_blocks = static_cast<int>((p.N + Traits::kStreamedRows - 1) / Traits::kStreamedRows);
    r.k_tiles = static_cast<int>((p.K + Traits::kStreamedKStep - 1) / Traits::kStreamedKStep);
    // Before the occupancy query: the carveout bounds it.
    set_streamed_carveout<T>(kernel_for<T>(true, r.m_class, norm, false, rope), r.smem_bytes);
    set_streamed_carveout<T>(kernel_for<T>(true, r.m_class, norm, true, rope), split_smem);
  } else {
    r.n_blocks = static_cast<int>((p.N + Traits::kBlockN - 1) / Traits::kBlockN);
    r.k_tiles = static_cast<int>((p.K + Traits::kKTile - 1) / Traits::kKTile);
  }
  if (p.splits > 0) {  // forced; a split with no step of K is pointless, so no more than k_tiles
    r.splits = std::max(1, std::min(p.splits, r.k_tiles));
  } else if (r.streamed && !streamed_split_enabled()) {
    r.splits = 1;
  } else {
    const DeviceCapacity* cap = nullptr;
    const KernelFn<T> split_kernel = kernel_for<T>(r.streamed, r.m_class, norm, true, rope);
    if (Status st = device_capacity<T>(split_kernel, split_smem, &cap); !st.is_ok()) return st;
    r.splits = r.streamed ? choose_splits(r.n_blocks, r.k_tiles, Traits::kStreamedSplitTargetCtasPerSm,
                                          Traits::kStreamedMinStepsPerSplit, *cap)
                          : choose_splits(r.n_blocks, r.k_tiles, Traits::kSplitTargetCtasPerSm,
                                          Traits::kMinKTilesPerSplit, *cap);
  }
  if (r.streamed) r.smem_bytes = smem_for(true, r.m_class, r.splits);
  if (Status st = choose_weight_buffers<T>(p, &r); !st.is_ok()) return st;
  *plan = r;
  return Status::ok();
}

template <typename T>
Status launch_plan(const FlatGemmParams<T>& p, const FlatGemmPlan& plan, cudaStream_t stream) {
  const KernelFn<T> kernel = kernel_for<T>(plan.streamed, plan.m_class, norm_of(p), plan.splits > 1,
                                           p.rope.q_out != nullptr, plan.weight_buffers);
  // Both mainloops: row blocks along y, clusters of `splits` CTAs along x split K.
  const dim3 grid(static_cast<unsigned>(plan.splits), static_cast<unsigned>(plan.n_blocks));
  const unsigned cluster = static_cast<unsigned>(plan.splits);
  return launch_status(launch_kernel(kernel, grid, dim3(Traits::kThreads), static_cast<size_t>(plan.smem_bytes), stream,
                                     cluster, p, plan.m_tiles, plan.k_tiles),
                       "flat_gemm");
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
  return launch_plan(p, plan, stream);
}

bool flat_gemm_can_fuse_norm(int64_t M, int64_t K, const void* x, const void* w, const void* norm_weight) {
  return M <= kFlatGemmStreamedMaxM && K > 0 && K % 8 == 0 && is_aligned16(x) && is_aligned16(w) &&
         is_aligned16(norm_weight);
}

template Status plan_flat_gemm<__half>(const FlatGemmParams<__half>&, FlatGemmPlan*);
template Status plan_flat_gemm<__nv_bfloat16>(const FlatGemmParams<__nv_bfloat16>&, FlatGemmPlan*);
template Status launch_flat_gemm<__half>(const FlatGemmParams<__half>&, cudaStream_t);
template Status launch_flat_gemm<__nv_bfloat16>(const FlatGemmParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
