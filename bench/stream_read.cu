#include "stream_read.h"

#include <cstdint>

#include "backend/cuda/launch.cuh"
#include "stream_fold.cuh"

namespace {

constexpr int kThreads = 256;
// 16-byte loads in flight per thread before any is used: 8 x 16 B x 2048 threads = 256 KB per
// SM, far past the ~23 KB HBM latency asks, so the figure is the memory system's, not this loop's.
constexpr int kUnroll = 8;

// Grid-stride over 16-byte pieces, kUnroll pieces per thread per round (stream_fold.cuh).
__global__ void __launch_bounds__(kThreads) stream_read_kernel(const uint4* data, int64_t pieces, float* sink) {
  const int64_t stride = int64_t{gridDim.x} * kThreads;
  const uint32_t acc = fold_stream<kUnroll>(data, int64_t{blockIdx.x} * kThreads + threadIdx.x, pieces, stride);
  if (acc == 0x9e3779b9u) *sink = static_cast<float>(acc);  // practically never: keeps the loads alive
}

}  // namespace

cudaError_t stream_read(const void* data, size_t bytes, float* sink, cudaStream_t stream) {
  static int blocks = 0;  // one full wave of resident blocks, once per process
  if (blocks == 0) {
    int device = 0, sms = 0, per_sm = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (err == cudaSuccess)
      err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, stream_read_kernel, kThreads, 0);
    if (err != cudaSuccess) return err;
    blocks = sms * (per_sm > 0 ? per_sm : 1);
  }
  return fdpp::cuda::launch_kernel(stream_read_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, stream, 1,
                                   static_cast<const uint4*>(data), static_cast<int64_t>(bytes / 16), sink);
}
