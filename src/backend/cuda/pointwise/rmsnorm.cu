#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/pointwise/pointwise.cuh"

namespace fdpp::cuda {
namespace {

// Why 256 threads: one block per row; a row of up to 8K elements is 32 elements per thread,
// enough to hide latency, and the block-wide reduction stays two warp shuffles deep.
constexpr int kThreads = 256;

__device__ float block_sum(float v) {
  __shared__ float warp_sums[kThreads / 32];
  __shared__ float total;
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_sums[lane] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0) total = v;
  }
  __syncthreads();
  return total;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const RmsNormParams<T> p) {
  const int64_t row = blockIdx.x;
  T* x = p.x + row * p.dim;
  T* out = p.out + row * p.dim;
  float sum_sq = 0.0f;
  if (p.residual != nullptr) {
    const T* res = p.residual + row * p.dim;
    for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) {
      // Round the sum to T first, as the unfused add followed by a norm would.
      const T s = from_float<T>(to_float(x[i]) + to_float(res[i]));
      x[i] = s;
      const float v = to_float(s);
      sum_sq += v * v;
    }
  } else {
    for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) {
      const float v = to_float(x[i]);
      sum_sq += v * v;
    }
  }
  const float inv_rms = rsqrtf(block_sum(sum_sq) / static_cast<float>(p.dim) + p.eps);
  // Each thread re-reads only elements it wrote itself: no barrier needed for x.
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads)
    out[i] = from_float<T>(to_float(x[i]) * inv_rms * to_float(p.weight[i]));
}

}  // namespace

template <typename T>
Status launch_rmsnorm(const RmsNormParams<T>& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.dim <= 0) return Status::ok();
  rmsnorm_kernel<T><<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(p);
  return last_launch_status("rmsnorm");
}

template Status launch_rmsnorm<float>(const RmsNormParams<float>&, cudaStream_t);
template Status launch_rmsnorm<__half>(const RmsNormParams<__half>&, cudaStream_t);
template Status launch_rmsnorm<__nv_bfloat16>(const RmsNormParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
