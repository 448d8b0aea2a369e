// Prefill attention: the tiled tensor-core kernel (prefill_tiled.cuh) for head_dim 64 and 128,
// then a pass that recomputes the (row, head) pairs it flagged as out of [lo, hi] with the online
// softmax; other head dims run the online softmax for every row.
#include <algorithm>
#include <string>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/attention/attention_traits.h"
#include "backend/cuda/attention/online_softmax.cuh"
#include "backend/cuda/attention/prefill_tiled.cuh"
#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/env_switch.h"

namespace fdpp::cuda {
namespace {

// Grid (ceil(rows * Hq / kFallbackScan)): each block reads kFallbackScan flags of the workspace
// (written for every row by the tiled kernel, so nothing needs clearing) and recomputes the
// flagged (row, head) pairs one after another, counting them.
template <typename T>
__global__ void __launch_bounds__(MergeTraits::kThreads) prefill_fallback_kernel(const AttentionParams<T> p) {
  constexpr int kScan = PrefillTraits::kFallbackScan;
  static_assert(kScan <= MergeTraits::kThreads);
  __shared__ int64_t found[kScan];
  __shared__ int n_found;
  const int64_t n = p.row_count() * p.num_q_heads;
  const int64_t i = int64_t{blockIdx.x} * kScan + threadIdx.x;
  if (threadIdx.x == 0) n_found = 0;
  __syncthreads();
  if (threadIdx.x < kScan && i < n && static_cast<const int32_t*>(p.workspace)[i] != 0)
    found[atomicAdd(&n_found, 1)] = i;
  __syncthreads();
  const int count = n_found;
  for (int k = 0; k < count; ++k) {
    const int64_t row = found[k];
    if (threadIdx.x == 0 && p.fallback_rows != nullptr) atomicAdd(p.fallback_rows, 1ull);
    detail::online_softmax_row<T, true>(p, row / p.num_q_heads, static_cast<int>(row % p.num_q_heads));
  }
}

// Grid (Hq, rows): the online softmax for every row (head dims without the tiled kernel).
template <typename T>
__global__ void __launch_bounds__(MergeTraits::kThreads) prefill_generic_kernel(const AttentionParams<T> p) {
  detail::online_softmax_row<T, true>(p, blockIdx.y, static_cast<int>(blockIdx.x));
}

template <typename T, int kHeadDim>
Status launch_tiled(const AttentionParams<T>& p, cudaStream_t stream) {
  constexpr size_t kSmem = detail::PrefillSmem<T, kHeadDim>::kBytes;
  auto* kernel = detail::prefill_tiled_kernel<T, kHeadDim>;
  // Above the 48 KB default; per device, so set on every launch (a cheap host call).
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmem)) != cudaSuccess)
    return last_launch_status("prefill attention shared memory");
  const dim3 grid(static_cast<unsigned>(p.num_q_heads), static_cast<unsigned>(p.num_tiles));
  kernel<<<grid, PrefillTraits::kThreads, kSmem, stream>>>(p, detail::softmax_consts(p.scale, p.range));
  return last_launch_status("attention prefill");
}

}  // namespace

AttentionPlan plan_prefill_attention(int64_t rows, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim) {
  AttentionPlan plan;
  // FDPP_PREFILL_GENERIC=1 runs every head dim through the generic (online-softmax) path: a
  // reference for the tiled kernel inside whole models.
  static const bool force_generic = env_switch("FDPP_PREFILL_GENERIC") == 1;
  plan.fast_path = !force_generic && (head_dim == 64 || head_dim == 128) && num_kv_heads > 0 &&
                   num_q_heads % num_kv_heads == 0;
  plan.num_splits = 1;
  plan.split_size = 0;  // unused: a tile walks its whole causal range
  // One range flag per (row, head); the tiled kernel writes each, so nothing is cleared.
  plan.workspace_bytes = static_cast<size_t>(std::max<int64_t>(rows * num_q_heads, 1)) * sizeof(int32_t);
  return plan;
}

template <typename T>
Status launch_prefill_attention(const AttentionParams<T>& p, cudaStream_t stream) {
  if (p.row_count() <= 0) return Status::ok();
  if (p.plan.num_splits != 1)
    return {ErrorCode::kInternal, "prefill attention: the plan must have one split (plan_prefill_attention)"};
  if (p.kv.head_dim > 2 * MergeTraits::kThreads)
    return {ErrorCode::kUnsupported, "attention: head_dim above 256 is not supported"};
  const int64_t pairs = p.row_count() * p.num_q_heads;
  if (!p.plan.fast_path) {
    const dim3 grid(static_cast<unsigned>(p.num_q_heads), static_cast<unsigned>(p.row_count()));
    prefill_generic_kernel<T><<<grid, MergeTraits::kThreads, 0, stream>>>(p);
    return last_launch_status("attention prefill (generic head dim)");
  }
  if (p.num_tiles <= 0 || p.tiles == nullptr)
    return {ErrorCode::kInvalidArgument, "prefill attention: no tiles for the rows"};
  const Status st = p.kv.head_dim == 128 ? launch_tiled<T, 128>(p, stream) : launch_tiled<T, 64>(p, stream);
  if (!st.is_ok()) return st;
  prefill_fallback_kernel<T><<<ceil_div(pairs, PrefillTraits::kFallbackScan), MergeTraits::kThreads, 0, stream>>>(p);
  return last_launch_status("attention prefill fallback");
}

template Status launch_prefill_attention<__half>(const AttentionParams<__half>&, cudaStream_t);
template Status launch_prefill_attention<__nv_bfloat16>(const AttentionParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
