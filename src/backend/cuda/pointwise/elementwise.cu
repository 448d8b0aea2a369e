#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/pointwise/pointwise.cuh"
#include "backend/cuda/pointwise/row_rms.cuh"

namespace fdpp::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void silu_mul_kernel(const SiluMulParams<T> p) {
  enter_dependent_grid();
  const int64_t n = p.rows * p.cols;
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += int64_t{gridDim.x} * kThreads) {
    const int64_t r = i / p.cols, c = i - r * p.cols;
    const T* row = p.gate_up + r * 2 * p.cols;
    // Interleaved: gate j and up j side by side (the CUDA backend's gate/up layout); else halves.
    const T* gate = p.interleaved ? row + 2 * c : row + c;
    const T* up = p.interleaved ? row + 2 * c + 1 : row + p.cols + c;
    p.out[i] = from_float<T>(silu(to_float(*gate)) * to_float(*up));
  }
}

// The interleaved silu_mul of a product whose norm was deferred (DeferredRowScale). Grid (column
// chunks, rows): a block first computes its row's inv rms (one 16-byte load per thread for a
// 4096-wide decode row, from L2), then takes kScaledColsPerThread outputs per thread.
constexpr int kScaledColsPerThread = 8;

template <typename T, bool kVectorised>
__global__ void __launch_bounds__(kThreads) silu_mul_row_scaled_kernel(const SiluMulParams<T> p) {
  enter_dependent_grid();
  const int64_t r = blockIdx.y;
  const float s = block_row_inv_rms<kThreads>(p.scale.rows + r * p.scale.dim, p.scale.dim, p.scale.eps);
  const int64_t first = (int64_t{blockIdx.x} * kThreads + threadIdx.x) * kScaledColsPerThread;
  const T* row = p.gate_up + r * 2 * p.cols;
  T* out = p.out + r * p.cols;
  if constexpr (kVectorised) {  // 16-bit, F % 8 == 0, 16-byte aligned rows
    if (first >= p.cols) return;
    float pairs[2][8], result[8];  // gate j, up j side by side
    unpack8<T>(reinterpret_cast<const uint4*>(row + 2 * first)[0], pairs[0]);
    unpack8<T>(reinterpret_cast<const uint4*>(row + 2 * first)[1], pairs[1]);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float* gu = &pairs[j / 4][2 * (j % 4)];
      result[j] = silu(gu[0] * s) * (gu[1] * s);
    }
    *reinterpret_cast<uint4*>(out + first) = pack8<T>(result);
  } else {
    for (int64_t c = first; c < min(first + kScaledColsPerThread, p.cols); ++c)
      out[c] = from_float<T>(silu(to_float(row[2 * c]) * s) * (to_float(row[2 * c + 1]) * s));
  }
}

// w [rows, cols] *= scale [cols] per column, rounded once (a norm weight folded into a projection).
template <typename T>
__global__ void scale_columns_kernel(T* w, const T* scale, int64_t rows, int64_t cols) {
  enter_dependent_grid();
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += int64_t{gridDim.x} * kThreads)
    w[i] = from_float<T>(to_float(w[i]) * to_float(scale[i % cols]));
}

template <typename T>
__global__ void add_kernel(const AddParams<T> p) {
  enter_dependent_grid();
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < p.n; i += int64_t{gridDim.x} * kThreads)
    p.x[i] = from_float<T>(to_float(p.x[i]) + to_float(p.y[i]));
}

template <typename T>
__global__ void convert_kernel(const float* src, T* dst, int64_t n) {
  enter_dependent_grid();
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += int64_t{gridDim.x} * kThreads)
    dst[i] = from_float<T>(src[i]);
}

template <typename T>
__global__ void fill_random_kernel(T* dst, int64_t n, uint64_t seed, float mean, float half_width) {
  enter_dependent_grid();
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += int64_t{gridDim.x} * kThreads) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i) + 1;  // splitmix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) / 8388608.0f - 1.0f;
    dst[i] = from_float<T>(mean + half_width * u);
  }
}

unsigned grid_for(int64_t n) { return std::min<unsigned>(ceil_div(n, kThreads), 65535u); }

}  // namespace

template <typename T>
Status launch_silu_mul(const SiluMulParams<T>& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.cols <= 0) return Status::ok();
  if (p.scale.rows != nullptr) {
    if (!p.interleaved) return {ErrorCode::kInternal, "silu_mul: a deferred row scale needs interleaved gate/up"};
    if (p.rows > 65535) return {ErrorCode::kInternal, "silu_mul: a deferred row scale takes at most 65535 rows"};
    const int64_t per_block = int64_t{kThreads} * kScaledColsPerThread;
    const dim3 grid(static_cast<unsigned>(ceil_div(p.cols, per_block)), static_cast<unsigned>(p.rows));
    const bool vectorised = sizeof(T) == 2 && p.cols % kScaledColsPerThread == 0 && is_aligned16(p.gate_up) &&
                            is_aligned16(p.out);
    void (*kernel)(SiluMulParams<T>) = vectorised ? silu_mul_row_scaled_kernel<T, sizeof(T) == 2>
                                                  : silu_mul_row_scaled_kernel<T, false>;
    return launch_status(launch_kernel(kernel, grid, dim3(kThreads), 0, stream, 1, p), "silu_mul (row scaled)");
  }
  return launch_status(
      launch_kernel(silu_mul_kernel<T>, dim3(grid_for(p.rows * p.cols)), dim3(kThreads), 0, stream, 1, p),
      "silu_mul");
}

template <typename T>
Status launch_scale_columns(T* w, const T* scale, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return Status::ok();
  return launch_status(launch_kernel(scale_columns_kernel<T>, dim3(grid_for(rows * cols)), dim3(kThreads), 0, stream,
                                     1, w, scale, rows, cols),
                       "scale_columns");
}

template <typename T>
Status launch_add(const AddParams<T>& p, cudaStream_t stream) {
  if (p.n <= 0) return Status::ok();
  return launch_status(launch_kernel(add_kernel<T>, dim3(grid_for(p.n)), dim3(kThreads), 0, stream, 1, p), "add");
}

template <typename T>
Status launch_convert_from_f32(const float* src, T* dst, int64_t n, cudaStream_t stream) {
  if (n <= 0) return Status::ok();
  return launch_status(
      launch_kernel(convert_kernel<T>, dim3(grid_for(n)), dim3(kThreads), 0, stream, 1, src, dst, n),
      "convert_from_f32");
}

template <typename T>
Status launch_fill_random(T* dst, int64_t n, uint64_t seed, float mean, float stddev, cudaStream_t stream) {
  if (n <= 0) return Status::ok();
  return launch_status(launch_kernel(fill_random_kernel<T>, dim3(grid_for(n)), dim3(kThreads), 0, stream, 1, dst, n,
                                     seed, mean, stddev * 1.7320508f),
                       "fill_random");
}

#define FDPP_INSTANTIATE(T)                                                       \
  template Status launch_silu_mul<T>(const SiluMulParams<T>&, cudaStream_t);      \
  template Status launch_add<T>(const AddParams<T>&, cudaStream_t);               \
  template Status launch_scale_columns<T>(T*, const T*, int64_t, int64_t, cudaStream_t); \
  template Status launch_convert_from_f32<T>(const float*, T*, int64_t, cudaStream_t); \
  template Status launch_fill_random<T>(T*, int64_t, uint64_t, float, float, cudaStream_t);
FDPP_INSTANTIATE(__half)
FDPP_INSTANTIATE(__nv_bfloat16)
FDPP_INSTANTIATE(float)
#undef FDPP_INSTANTIATE

}  // namespace fdpp::cuda
