#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/pointwise/pointwise.cuh"
#include "backend/cuda/pointwise/row_rms.cuh"

namespace fdpp::cuda {
namespace {

// Why 256 threads: one block per row; a row of up to 8K elements is 32 elements per thread,
// enough to hide latency, and the block-wide reduction stays two warp shuffles deep.
constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const RmsNormParams<T> p) {
  enter_dependent_grid();
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
  const float inv_rms = block_inv_rms<kThreads>(sum_sq, p.dim, p.eps);
  // Each thread re-reads only elements it wrote itself: no barrier needed for x.
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads)
    out[i] = from_float<T>(to_float(x[i]) * inv_rms * to_float(p.weight[i]));
}

// The same for 16-bit rows of dim % 8 == 0 and dim <= kThreads * 8 * kVecs: every 16-byte piece
// of the row (and of the residual) is loaded up front into registers, so a row costs about one
// memory latency instead of one per element (a decode step's norm is a single row: latency-bound).
template <typename T, int kVecs>
__global__ void __launch_bounds__(kThreads) rmsnorm_vec_kernel(const RmsNormParams<T> p) {
  enter_dependent_grid();
  const int64_t row = blockIdx.x;
  const int pieces = static_cast<int>(p.dim / 8);
  uint4* x = reinterpret_cast<uint4*>(p.x + row * p.dim);
  uint4* out = reinterpret_cast<uint4*>(p.out + row * p.dim);
  const uint4* weight = reinterpret_cast<const uint4*>(p.weight);
  float v[kVecs][8];
  uint4 raw[kVecs], res_raw[kVecs];
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = k * kThreads + threadIdx.x;
    if (i < pieces) {
      raw[k] = x[i];
      if (p.residual != nullptr) res_raw[k] = reinterpret_cast<const uint4*>(p.residual + row * p.dim)[i];
    }
  }
  float sum_sq = 0.0f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = k * kThreads + threadIdx.x;
    if (i >= pieces) continue;
    unpack8<T>(raw[k], v[k]);
    if (p.residual != nullptr) {
      float r[8];
      unpack8<T>(res_raw[k], r);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[k][e] = to_float(from_float<T>(v[k][e] + r[e]));  // rounded as unfused
      x[i] = pack8<T>(v[k]);
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) sum_sq += v[k][e] * v[k][e];
  }
  const float inv_rms = block_inv_rms<kThreads>(sum_sq, p.dim, p.eps);
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = k * kThreads + threadIdx.x;
    if (i >= pieces) continue;
    float w[8];
    unpack8<T>(weight[i], w);
#pragma unroll
    for (int e = 0; e < 8; ++e) v[k][e] = v[k][e] * inv_rms * w[e];
    out[i] = pack8<T>(v[k]);
  }
}

}  // namespace

template <typename T>
Status launch_rmsnorm(const RmsNormParams<T>& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.dim <= 0) return Status::ok();
  void (*kernel)(RmsNormParams<T>) = rmsnorm_kernel<T>;
  if constexpr (sizeof(T) == 2) {
    const bool aligned = p.dim % 8 == 0 && is_aligned16(p.x) && is_aligned16(p.out) && is_aligned16(p.weight) &&
                         (p.residual == nullptr || is_aligned16(p.residual));
    const int64_t per_thread = (p.dim / 8 + kThreads - 1) / kThreads;
    if (aligned && per_thread <= 1) kernel = rmsnorm_vec_kernel<T, 1>;
    else if (aligned && per_thread <= 2) kernel = rmsnorm_vec_kernel<T, 2>;
    else if (aligned && per_thread <= 4) kernel = rmsnorm_vec_kernel<T, 4>;
  }
  return launch_status(launch_kernel(kernel, dim3(static_cast<unsigned>(p.rows)), dim3(kThreads), 0, stream, 1, p),
                       "rmsnorm");
}

template Status launch_rmsnorm<float>(const RmsNormParams<float>&, cudaStream_t);
template Status launch_rmsnorm<__half>(const RmsNormParams<__half>&, cudaStream_t);
template Status launch_rmsnorm<__nv_bfloat16>(const RmsNormParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
