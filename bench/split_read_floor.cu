#include "split_read_floor.h"

#include <cstdint>

#include "backend/cuda/launch.cuh"
#include "stream_fold.cuh"

namespace {

constexpr int kWidth = 128;  // floats per output row (a head_dim of 128): one per thread
constexpr int kThreads = kWidth;
constexpr int kUnroll = 8;   // 16-byte loads in flight per thread per round

// Grid (splits, groups). The loads go out before the wait (the attention's split kernel does the
// same: KV positions no earlier kernel of the step writes), the partial store after it. kOneLaunch:
// the partial is added into sums[group] (red.global.add.f32) instead, and the group's last CTA to
// arrive writes the rows, then zeroes the sums and its counter for the next call.
template <bool kOneLaunch>
__global__ void __launch_bounds__(kThreads) read_partials_kernel(const uint4* data, int64_t pieces, int rows_per_group,
                                                                 float* partials, float* sums, int* arrivals,
                                                                 float* out) {
  const int64_t ctas = int64_t{gridDim.x} * gridDim.y;
  const int64_t cta = int64_t{blockIdx.y} * gridDim.x + blockIdx.x;
  const int64_t begin = pieces * cta / ctas, end = pieces * (cta + 1) / ctas;
  const uint32_t acc = fold_stream<kUnroll>(data, begin + threadIdx.x, end, kThreads);
  // A value per (row, lane) that depends on every load, so none is dropped.
  const float value = static_cast<float>(acc & 0xffffu);
  if constexpr (!kOneLaunch) {
    for (int r = 0; r < rows_per_group; ++r) partials[(cta * rows_per_group + r) * kWidth + threadIdx.x] = value + r;
  } else {
    const int64_t group = blockIdx.y;
    float* group_sums = sums + group * rows_per_group * kWidth;
    for (int r = 0; r < rows_per_group; ++r) atomicAdd(group_sums + r * kWidth + threadIdx.x, value + r);
    __shared__ bool last;
    __threadfence();  // this CTA's adds are visible before its arrival is counted
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(arrivals + group, 1) == static_cast<int>(gridDim.x) - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();  // the other CTAs' adds, counted before ours, are read after it
    for (int r = 0; r < rows_per_group; ++r) {
      const int64_t at = r * kWidth + threadIdx.x;
      out[(group * rows_per_group + r) * kWidth + threadIdx.x] = __ldcg(group_sums + at);
      group_sums[at] = 0;
    }
    if (threadIdx.x == 0) arrivals[group] = 0;
  }
}

// Grid (rows_per_group, groups): the sum of one row's splits, all loads in flight before any add
// (the attention merge's shape, without the fallback check and the division).
__global__ void __launch_bounds__(kThreads) sum_partials_kernel(const float* partials, int splits, float* out) {
  fdpp::cuda::launch_dependents_early();  // as the attention merge: the next call's loads start now
  fdpp::cuda::enter_dependent_grid();
  const int rows_per_group = static_cast<int>(gridDim.x);
  const int64_t group = blockIdx.y, row = blockIdx.x;
  constexpr int kMaxSplits = 64;
  float v[kMaxSplits];
#pragma unroll
  for (int s = 0; s < kMaxSplits; ++s)
    if (s < splits) v[s] = partials[((group * splits + s) * rows_per_group + row) * kWidth + threadIdx.x];
  float sum = 0;
#pragma unroll
  for (int s = 0; s < kMaxSplits; ++s)
    if (s < splits) sum += v[s];
  out[(group * rows_per_group + row) * kWidth + threadIdx.x] = sum;
}

}  // namespace

size_t split_read_floor_workspace_bytes(const SplitReadFloorShape& shape) {
  const size_t rows = static_cast<size_t>(shape.groups) * shape.rows_per_group;
  return (rows * shape.splits + 2 * rows) * kWidth * sizeof(float) + static_cast<size_t>(shape.groups) * sizeof(int);
}

cudaError_t split_read_floor(const void* data, size_t bytes, const SplitReadFloorShape& shape, void* workspace,
                             bool one_launch, cudaStream_t stream) {
  if (shape.groups <= 0 || shape.splits <= 0 || shape.splits > 64 || shape.rows_per_group <= 0 || bytes % 16 != 0)
    return cudaErrorInvalidValue;
  const size_t rows = static_cast<size_t>(shape.groups) * shape.rows_per_group;
  float* partials = static_cast<float*>(workspace);
  float* out = partials + rows * shape.splits * kWidth;
  float* sums = out + rows * kWidth;
  int* arrivals = reinterpret_cast<int*>(sums + rows * kWidth);
  const dim3 grid1(static_cast<unsigned>(shape.splits), static_cast<unsigned>(shape.groups));
  cudaError_t err = fdpp::cuda::launch_kernel(one_launch ? read_partials_kernel<true> : read_partials_kernel<false>,
                                              grid1, dim3(kThreads), 0, stream, 1, static_cast<const uint4*>(data),
                                              static_cast<int64_t>(bytes / 16), shape.rows_per_group, partials, sums,
                                              arrivals, out);
  if (err != cudaSuccess || one_launch) return err;
  const dim3 grid2(static_cast<unsigned>(shape.rows_per_group), static_cast<unsigned>(shape.groups));
  return fdpp::cuda::launch_kernel(sum_partials_kernel, grid2, dim3(kThreads), 0, stream, 1,
                                   static_cast<const float*>(partials), shape.splits, out);
}
