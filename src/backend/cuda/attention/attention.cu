// Split-KV attention with the asynchronized softmax (see attention.cuh), and its merge kernel,
// which also recomputes out-of-range rows with the online softmax.
#include <algorithm>
#include <cmath>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/attention/attention_mma.cuh"
#include "backend/cuda/attention/attention_traits.h"
#include "backend/cuda/attention/mma_grid.h"
#include "backend/cuda/attention/online_softmax.cuh"
#include "backend/cuda/attention/split_common.cuh"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/launch.cuh"

namespace fdpp::cuda {
namespace {

using detail::carve;
using detail::kLog2e;
using detail::slot_offset;
using detail::Workspace;

// Grid (splits, Hkv, T). Each block handles the GQA group of query heads sharing one KV head,
// for positions [split * split_size, ...) of its token's row. Lanes split a K/V row into 16-byte
// pieces (kLanesPerRow lanes per row), so one warp reads kRowsPerWarp rows per iteration.
template <typename T, int kHeadDim, int kMaxGroup>
__global__ void __launch_bounds__(SplitKvTraits::kThreads)
split_kv_kernel(const AttentionParams<T> p) {
  enter_dependent_grid();
  using Tr = SplitKvTraits;
  constexpr int kLanesPerRow = kHeadDim / 8;
  constexpr int kRowsPerWarp = 32 / kLanesPerRow;
  constexpr int kRowsPerIter = kRowsPerWarp * Tr::kWarps;
  constexpr int kUnroll = Tr::template kUnrollFor<kMaxGroup>;

  const int split = blockIdx.x, kv_head = blockIdx.y;
  const int64_t z = blockIdx.z, t = p.token_of(z);
  const int group = p.num_q_heads / p.kv.num_kv_heads;
  const int kv_len = p.slots.positions[t] + 1;
  const int begin = split * p.plan.split_size;
  const int end = min(kv_len, begin + p.plan.split_size);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row_lane = lane % kLanesPerRow, row_in_warp = lane / kLanesPerRow;
  const int64_t row_elems = int64_t{p.kv.num_kv_heads} * kHeadDim;
  const int32_t* table = p.slots.block_tables + int64_t{p.slots.token_seq[t]} * p.slots.max_blocks_per_seq;
  // q pre-scaled so that exp2(q.k - phi*log2e) = e^(s - phi)
  float qf[kMaxGroup][8];
  const float q_scale = p.scale * kLog2e;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < group) {
      const T* q = p.q + (t * p.num_q_heads + kv_head * group + g) * kHeadDim + row_lane * 8;
      unpack8<T>(*reinterpret_cast<const uint4*>(q), qf[g]);
#pragma unroll
      for (int i = 0; i < 8; ++i) qf[g][i] *= q_scale;
    }
  }
  const float phi2 = p.range.phi * kLog2e, lo2 = p.range.lo * kLog2e, hi2 = p.range.hi * kLog2e;
  float acc[kMaxGroup][8] = {};
  float sum[kMaxGroup] = {};
  bool out_of_range = false;

  const T* k_base = p.kv.k + int64_t{kv_head} * kHeadDim + row_lane * 8;
  const T* v_base = p.kv.v + int64_t{kv_head} * kHeadDim + row_lane * 8;
  // The loop bound is uniform across the warp, so every lane joins every shuffle.
  for (int base = begin + warp * kRowsPerWarp; base < end; base += kRowsPerIter * kUnroll) {
    uint4 kr[kUnroll], vr[kUnroll];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int pos = base + u * kRowsPerIter + row_in_warp;
      valid[u] = pos < end;
      if (valid[u]) {
        const int64_t off = slot_offset(table, pos, p.kv.block_size, row_elems);
        kr[u] = *reinterpret_cast<const uint4*>(k_base + off);
        vr[u] = *reinterpret_cast<const uint4*>(v_base + off);
      } else {
        kr[u] = make_uint4(0, 0, 0, 0);
        vr[u] = make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float kf[8], vf[8];
      unpack8<T>(kr[u], kf);
      unpack8<T>(vr[u], vf);
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) s += qf[g][i] * kf[i];
#pragma unroll
        for (int off = kLanesPerRow / 2; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (valid[u] && g < group) {
          out_of_range |= (s < lo2) | (s > hi2);
          const float e = exp2f(s - phi2);
          sum[g] += e;
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[g][i] += e * vf[i];
        }
      }
    }
  }

  // Reduce over the rows a warp holds (lanes with the same row_lane), then over warps.
#pragma unroll
  for (int off = kLanesPerRow; off < 32; off <<= 1) {
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      sum[g] += __shfl_xor_sync(0xffffffffu, sum[g], off);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[g][i] += __shfl_xor_sync(0xffffffffu, acc[g][i], off);
    }
  }
  __shared__ detail::SplitPartials<kMaxGroup, kHeadDim> sp;
  if (threadIdx.x == 0) sp.out_of_range = 0;
  __syncthreads();
  if (out_of_range) sp.out_of_range = 1;
  if (row_in_warp == 0) {
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
#pragma unroll
      for (int i = 0; i < 8; ++i) sp.acc[warp][g][row_lane * 8 + i] = acc[g][i];
      if (row_lane == 0) sp.sum[warp][g] = sum[g];
    }
  }
  __syncthreads();
  detail::store_split(p, sp, z, kv_head, group, split);
}

// The fast path of the merge for one row: out = sum of the splits' partial sums / sum of their
// denominators, or false when a split flagged a score outside the range. Thread i owns the float4
// of head dims i % (hd / 4) of every (kThreads / (hd / 4))-th split and issues kLoadsInFlight of
// them before adding any, so a row of up to 32 splits costs one L2 round trip (the first version walked
// the splits in three loops, four loads per round trip: 1.4-2 us more per call at batch 1 with 8
// KV heads). The parts meet in shared memory in a fixed order, so the result does not depend on
// timing.
template <typename T, int kHeadDim>
__device__ bool merge_row_splits(const AttentionParams<T>& p, const Workspace& ws, int64_t row, T* out) {
  constexpr int kThreads = MergeTraits::kThreads;
  constexpr int kLoads = MergeTraits::kLoadsInFlight;
  constexpr int kLanesPerSplit = kHeadDim / 4;
  constexpr int kSplitsPerPass = kThreads / kLanesPerSplit;  // 4 at hd 128, 8 at hd 64
  static_assert(kThreads % kLanesPerSplit == 0 && kThreads % 32 == 0);
  __shared__ float4 parts[kSplitsPerPass][kLanesPerSplit];
  __shared__ float warp_denominators[kThreads / 32];

  const int splits = p.plan.num_splits;
  const int part = threadIdx.x / kLanesPerSplit, lane4 = threadIdx.x % kLanesPerSplit;
  // ws.acc rows are [splits, hd] fp32: 16-byte aligned since hd % 4 == 0.
  const float4* acc = reinterpret_cast<const float4*>(ws.acc + row * splits * kHeadDim) + lane4;
  // Each thread's first range flag and denominator are requested before the partial sums and used
  // after them, so they arrive in the same L2 round trip as the sums instead of a second one.
  const bool owns_split = static_cast<int>(threadIdx.x) < splits;
  int flagged = owns_split ? ws.flags[row * splits + threadIdx.x] : 0;
  float denominator = owns_split ? ws.sum[row * splits + threadIdx.x] : 0.0f;
  float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  for (int first = part; first < splits; first += kSplitsPerPass * kLoads) {
    float4 v[kLoads];
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int s = first + u * kSplitsPerPass;
      v[u] = s < splits ? acc[int64_t{s} * kLanesPerSplit] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      a.x += v[u].x;
      a.y += v[u].y;
      a.z += v[u].z;
      a.w += v[u].w;
    }
  }
  for (int s = threadIdx.x + kThreads; s < splits; s += kThreads) {
    flagged |= ws.flags[row * splits + s];
    denominator += ws.sum[row * splits + s];
  }
  for (int off = 16; off > 0; off >>= 1) denominator += __shfl_xor_sync(0xffffffffu, denominator, off);
  if (threadIdx.x % 32 == 0) warp_denominators[threadIdx.x / 32] = denominator;
  parts[part][lane4] = a;
  if (__syncthreads_or(flagged)) return false;
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) total += warp_denominators[w];
  const float inv = 1.0f / total;
  if (threadIdx.x < kHeadDim) {
    const int d = threadIdx.x;
    const float* part_rows = reinterpret_cast<const float*>(parts);
    float sum = 0.0f;
#pragma unroll
    for (int q = 0; q < kSplitsPerPass; ++q) sum += part_rows[q * kHeadDim + d];
    out[d] = from_float<T>(sum * inv);
  }
  return true;
}

// Grid (Hq, T). Sums the splits of one row; a flagged row (or any row when the fast path did not
// run) is recomputed from the cache with the ordinary online softmax.
template <typename T>
__global__ void __launch_bounds__(MergeTraits::kThreads) merge_kernel(const AttentionParams<T> p) {
  if (p.plan.merge_early) launch_dependents_early();  // the O projection's weight loads overlap the split's tail
  enter_dependent_grid();
  const int h = blockIdx.x;
  const int64_t z = blockIdx.y, t = p.token_of(z);
  const int64_t row = z * p.num_q_heads + h;      // workspace row
  const int64_t qrow = t * p.num_q_heads + h;     // q / out row
  const int hd = p.kv.head_dim;
  const Workspace ws = carve(p.workspace, p.row_count(), p.num_q_heads, p.plan.num_splits, hd);
  T* out = p.out + qrow * hd;

  if (p.plan.fast_path) {
    // The fast path runs for head dims 64 and 128 only (plan_attention).
    const bool merged =
        hd == 128 ? merge_row_splits<T, 128>(p, ws, row, out) : merge_row_splits<T, 64>(p, ws, row, out);
    if (merged) return;
    if (threadIdx.x == 0 && p.fallback_rows != nullptr) atomicAdd(p.fallback_rows, 1ull);
  }
  detail::online_softmax_row<T, true>(p, z, h);
}

template <typename T, int kHeadDim>
cudaError_t launch_split(const AttentionParams<T>& p, int group, cudaStream_t stream) {
  // group selects the CUDA-core kernel's variant (plan.tensor_cores: the tensor-core kernel).
  const dim3 grid(static_cast<unsigned>(p.plan.num_splits), static_cast<unsigned>(p.kv.num_kv_heads),
                  static_cast<unsigned>(p.row_count()));
  if (p.plan.tensor_cores) return detail::launch_split_mma<T, kHeadDim>(p, grid, stream);
  void (*kernel)(AttentionParams<T>) = split_kv_kernel<T, kHeadDim, 2>;
  if (group <= 1) kernel = split_kv_kernel<T, kHeadDim, 1>;
  return launch_kernel_with(p.plan.split_pdl, kernel, grid, dim3(SplitKvTraits::kThreads), 0, stream, 1, p);
}

// Blocks of the tensor-core kernel one SM holds at once (its shared-memory ring bounds it) on the
// current device.
template <int kHeadDim, int kStages, detail::MmaCopy kCopy>
int mma_blocks_per_sm() {
  constexpr size_t kBytes = detail::MmaSplitSmem<kHeadDim, kStages, kCopy>::kBytes;
  void (*kernel)(AttentionParams<__half>, detail::KvTileMaps) =
      detail::split_kv_mma_kernel<__half, kHeadDim, kStages, kCopy>;
  int blocks = 0;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kBytes)) !=
          cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, SplitKvTraits::kThreads, kBytes) != cudaSuccess) {
    (void)cudaGetLastError();  // no device: plan as if one block fits
    return 1;
  }
  return std::max(blocks, 1);
}

// Resident blocks per SM of the tensor-core kernel's two ring depths with one copy engine; asked
// once per process and head dim.
struct RingOccupancy {
  int deep, shallow;
};
template <detail::MmaCopy kCopy>
RingOccupancy mma_occupancy(int64_t head_dim) {
  constexpr int kDeep = SplitKvTraits::kMmaStages, kShallow = SplitKvTraits::kMmaShallowStages;
  static const RingOccupancy hd64{mma_blocks_per_sm<64, kDeep, kCopy>(), mma_blocks_per_sm<64, kShallow, kCopy>()};
  static const RingOccupancy hd128{mma_blocks_per_sm<128, kDeep, kCopy>(), mma_blocks_per_sm<128, kShallow, kCopy>()};
  return head_dim == 64 ? hd64 : hd128;
}

}  // namespace

Status validate_softmax_range(const SoftmaxRange& r, int64_t max_context) {
  // e^(hi - phi) * context * |v| must stay below fp32 max (~e^88.7); leave room for |v| up to e^8.
  const double headroom = 88.0 - 8.0 - std::log(static_cast<double>(std::max<int64_t>(max_context, 1)));
  if (!(r.lo < r.hi) || !(r.lo <= r.phi) || !(r.phi <= r.hi))
    return {ErrorCode::kInvalidArgument, "softmax range: need lo <= phi <= hi with lo < hi"};
  if (r.hi - r.phi > headroom)
    return {ErrorCode::kInvalidArgument, "softmax range: hi - phi too large: e^(hi-phi) could overflow fp32"};
  if (r.phi - r.lo > 80.0f)
    return {ErrorCode::kInvalidArgument, "softmax range: phi - lo > 80: e^(lo-phi) would underflow fp32"};
  return Status::ok();
}

AttentionPlan plan_attention(int64_t tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                             int64_t max_kv_len, int sm_count) {
  AttentionPlan plan;
  if (tokens <= 0 || num_kv_heads <= 0 || max_kv_len <= 0) return plan;  // nothing to launch (a prefill-only step)
  const int64_t group = num_q_heads / num_kv_heads;
  plan.fast_path = (head_dim == 64 || head_dim == 128) && group >= 1 && group <= 8;
  if (plan.fast_path) {
    const int64_t blocks_per_split = tokens * num_kv_heads;
    // A/B switches, so that one binary times both sides: FDPP_ATTENTION_SINGLE_SPLIT_WAVES=N
    // replaces kSingleSplitWaves; FDPP_ATTENTION_BULK=0 keeps cp.async where the GPU has bulk
    // copies (sm_90), FDPP_ATTENTION_TENSOR_MAPS=0 keeps their row copies where tiles could take
    // tensor copies; FDPP_ATTENTION_MHA_TENSOR_CORES=0|1 forces the kernel of groups below
    // kMinTensorCoreGroup; FDPP_ATTENTION_MMA_STAGES=2|3 forces a ring depth;
    // FDPP_ATTENTION_MIN_SPLIT_POSITIONS=N raises the shortest split above kMinSplitPositions;
    // FDPP_ATTENTION_SPLIT_PDL=0|1 forces the split launch's PDL attribute; FDPP_ATTENTION_SPLITS=N
    // forces N splits per row (at most one per kMinSplitPositions positions) on either kernel;
    // FDPP_ATTENTION_FULL_RING=0 keeps the tensor-core kernel's one-wave splits (full_ring_splits).
    static const int single_split_switch = env_switch("FDPP_ATTENTION_SINGLE_SPLIT_WAVES");
    static const int single_split_waves =
        single_split_switch > 0 ? single_split_switch : SplitKvTraits::kSingleSplitWaves;
    int64_t want = (int64_t{sm_count} * SplitKvTraits::kWavesTarget + blocks_per_split - 1) / blocks_per_split;
    if (blocks_per_split >= int64_t{sm_count} * single_split_waves) want = 1;
    static const int64_t min_split =
        std::max<int64_t>(SplitKvTraits::kMinSplitPositions, env_switch("FDPP_ATTENTION_MIN_SPLIT_POSITIONS"));
    const int64_t max_splits = std::max<int64_t>(1, (max_kv_len + min_split - 1) / min_split);
    constexpr int kDeep = SplitKvTraits::kMmaStages, kShallow = SplitKvTraits::kMmaShallowStages;
    static const bool bulk = bulk_copy_supported() && env_switch("FDPP_ATTENTION_BULK") != 0;
    static const int mha_switch = env_switch("FDPP_ATTENTION_MHA_TENSOR_CORES");
    static const int forced = env_switch("FDPP_ATTENTION_MMA_STAGES");
    static const bool tensor_maps = bulk && tensor_maps_supported() && env_switch("FDPP_ATTENTION_TENSOR_MAPS") != 0;
    using detail::MmaCopy;
    const RingOccupancy occupancy = tensor_maps ? mma_occupancy<MmaCopy::kTensorTiles>(head_dim)
                                    : bulk      ? mma_occupancy<MmaCopy::kBulkRows>(head_dim)
                                                : mma_occupancy<MmaCopy::kCpAsync>(head_dim);
    const int deep = occupancy.deep, shallow = occupancy.shallow;
    // GQA groups always run on tensor cores; smaller ones where small_group_on_tensor_cores says
    // (mma_grid.h).
    plan.tensor_cores = group >= SplitKvTraits::kMinTensorCoreGroup ||
                        (mha_switch == 0 || mha_switch == 1
                             ? mha_switch == 1
                             : small_group_on_tensor_cores(blocks_per_split, sm_count, deep, max_kv_len));
    if (plan.tensor_cores) {
      // The tensor-core kernel keeps its loads in flight through its own pipeline: one wave of
      // resident blocks, as many as fit without a partial second wave, with the ring depth whose
      // last wave is fuller; on a tie the shallow ring, whose extra blocks hide latency with more
      // warps, where its splits are long enough (attention_traits.h).
      plan.mma_bulk = bulk;
      plan.mma_tensor_maps = tensor_maps;
      MmaGrid grid = choose_mma_grid(blocks_per_split, sm_count, deep, shallow, max_kv_len, max_splits);
      static const bool full_ring = env_switch("FDPP_ATTENTION_FULL_RING") != 0;
      const MmaGrid wide = group < SplitKvTraits::kMinTensorCoreGroup
                               ? wide_small_group_grid(blocks_per_split, sm_count, deep, max_kv_len, max_splits)
                               : MmaGrid{grid.stages, 0};
      if (wide.splits > 0) grid = wide;  // a wide MHA grid replaces the one-wave grid
      else if (full_ring) grid.splits = full_ring_splits(grid.splits, blocks_per_split, sm_count, max_kv_len);
      if ((forced == kShallow || forced == kDeep) && forced != grid.stages)
        grid = {forced, one_wave_splits(blocks_per_split, sm_count, forced == kDeep ? deep : shallow, max_splits)};
      plan.mma_stages = grid.stages;
      want = grid.splits;
    }
    static const int forced_splits = env_switch("FDPP_ATTENTION_SPLITS");
    if (forced_splits > 0) want = forced_splits;
    plan.num_splits = static_cast<int32_t>(std::clamp<int64_t>(want, 1, max_splits));
    const int64_t granule = 64;  // keeps every split a whole number of warp iterations
    const int64_t size = (max_kv_len + plan.num_splits - 1) / plan.num_splits;
    plan.split_size = static_cast<int32_t>((size + granule - 1) / granule * granule);
    plan.num_splits = static_cast<int32_t>((max_kv_len + plan.split_size - 1) / plan.split_size);
    // The tensor-core kernel always launches programmatically; the CUDA-core one only where its
    // splits are short and its (token, KV head) pairs few (mma_grid.h).
    static const int split_pdl_switch = env_switch("FDPP_ATTENTION_SPLIT_PDL");
    plan.split_pdl = split_pdl_switch == 0 || split_pdl_switch == 1
                         ? split_pdl_switch == 1
                         : plan.tensor_cores || cuda_core_split_pdl(plan.split_size, blocks_per_split, sm_count);
    static const bool merge_early = env_switch("FDPP_ATTENTION_MERGE_EARLY") != 0;  // A/B switch
    plan.merge_early = merge_early;
  }
  const int64_t rows = tokens * num_q_heads;
  plan.workspace_bytes = static_cast<size_t>(rows * plan.num_splits * (head_dim + 1)) * sizeof(float) +
                         static_cast<size_t>(rows * plan.num_splits) * sizeof(int32_t);
  return plan;
}

template <typename T>
Status launch_attention(const AttentionParams<T>& p, cudaStream_t stream) {
  if (p.row_count() <= 0) return Status::ok();
  if (p.kv.head_dim > 2 * MergeTraits::kThreads)
    return {ErrorCode::kUnsupported, "attention: head_dim above 256 is not supported"};
  const int group = p.num_q_heads / p.kv.num_kv_heads;
  if (p.plan.fast_path) {
    const Status st = launch_status(p.kv.head_dim == 128 ? launch_split<T, 128>(p, group, stream)
                                                         : launch_split<T, 64>(p, group, stream),
                                    "attention split-kv");
    if (!st.is_ok() || p.plan.num_splits == 1) return st;  // one split: the split kernel wrote out
  }
  const dim3 grid(static_cast<unsigned>(p.num_q_heads), static_cast<unsigned>(p.row_count()));
  return launch_status(launch_kernel(merge_kernel<T>, grid, dim3(MergeTraits::kThreads), 0, stream, 1, p),
                       "attention merge");
}

template Status launch_attention<__half>(const AttentionParams<__half>&, cudaStream_t);
template Status launch_attention<__nv_bfloat16>(const AttentionParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
