// The read loop of the bench's plain-read kernels (stream_read.cu, split_read_floor.cu): 16-byte
// pieces [first, end) of data with the given stride, kUnroll loads in flight per round, folded
// into one word so the compiler keeps every load. The first round's loads go out before the
// grid-dependency wait (as the linear kernels' weights and the attention's KV do); the wait
// happens in every thread, also one with no full round.
#pragma once

#include <cstdint>

#include "backend/cuda/launch.cuh"
#include "backend/cuda/ptx.cuh"

template <int kUnroll>
__device__ __forceinline__ uint32_t fold_stream(const uint4* data, int64_t first, int64_t end, int64_t stride) {
  uint32_t acc = 0;
  bool waited = false;
  int64_t i = first;
  for (; i + (kUnroll - 1) * stride < end; i += kUnroll * stride) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = fdpp::cuda::detail::load_stream_16(data + i + u * stride);
    if (!waited) {
      fdpp::cuda::enter_dependent_grid();
      waited = true;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (!waited) fdpp::cuda::enter_dependent_grid();
  for (; i < end; i += stride) {
    const uint4 v = fdpp::cuda::detail::load_stream_16(data + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  return acc;
}
