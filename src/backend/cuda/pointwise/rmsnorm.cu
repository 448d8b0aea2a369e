#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

#include "backend/cuda/pointwise/rmsnorm.cuh"

namespace fdpp::cuda {
namespace {

// Why 256 threads: one block per row; a row of up to 8K elements is 32 elements per thread,
// enough to hide latency, and the block-wide reduction stays two warp shuffles deep.
constexpr int kThreads = 256;

__device__ inline float to_float(float v) { return v; }
__device__ inline float to_float(__half v) { return __half2float(v); }
__device__ inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ inline T from_float(float v);
template <> __device__ inline float from_float<float>(float v) { return v; }
template <> __device__ inline __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ inline float block_sum(float v) {
  __shared__ float warp_sums[kThreads / 32];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = lane < kThreads / 32 ? warp_sums[lane] : 0.0f;
  if (warp == 0)
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  __shared__ float total;
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  return total;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const RmsNormParams<T> p) {
  const int64_t row = blockIdx.x;
  const T* x = p.x + row * p.dim;
  T* out = p.out + row * p.dim;
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) {
    const float v = to_float(x[i]);
    sum_sq += v * v;
  }
  const float inv_rms = rsqrtf(block_sum(sum_sq) / static_cast<float>(p.dim) + p.eps);
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads)
    out[i] = from_float<T>(to_float(x[i]) * inv_rms * to_float(p.weight[i]));
}

}  // namespace

template <typename T>
Status launch_rmsnorm(const RmsNormParams<T>& params, cudaStream_t stream) {
  if (params.rows <= 0 || params.dim <= 0) return Status::ok();
  if (params.rows > 0x7fffffff)
    return {ErrorCode::kInvalidArgument, "rmsnorm: too many rows for one launch"};
  rmsnorm_kernel<T><<<static_cast<unsigned>(params.rows), kThreads, 0, stream>>>(params);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return {ErrorCode::kInternal, std::string("rmsnorm launch: ") + cudaGetErrorString(err)};
  return Status::ok();
}

template Status launch_rmsnorm<float>(const RmsNormParams<float>&, cudaStream_t);
template Status launch_rmsnorm<__half>(const RmsNormParams<__half>&, cudaStream_t);
template Status launch_rmsnorm<__nv_bfloat16>(const RmsNormParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
