#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/pointwise/pointwise.cuh"

namespace fdpp::cuda {
namespace {

constexpr int kThreads = 128;

// One block per output row; 16-byte copies when the row allows it.
template <typename T>
__global__ void gather_rows_kernel(const GatherRowsParams<T> p) {
  enter_dependent_grid();
  const int64_t r = blockIdx.x;
  const int64_t src_row = p.index[r];
  const T* src = p.src + src_row * p.dim;
  T* out = p.out + r * p.dim;
  constexpr int kVec = 16 / sizeof(T);
  if (p.dim % kVec == 0) {
    const uint4* s = reinterpret_cast<const uint4*>(src);
    uint4* d = reinterpret_cast<uint4*>(out);
    for (int64_t i = threadIdx.x; i < p.dim / kVec; i += kThreads) d[i] = s[i];
  } else {
    for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) out[i] = src[i];
  }
}

}  // namespace

template <typename T>
Status launch_gather_rows(const GatherRowsParams<T>& p, cudaStream_t stream) {
  if (p.rows <= 0) return Status::ok();
  return launch_status(
      launch_kernel(gather_rows_kernel<T>, dim3(static_cast<unsigned>(p.rows)), dim3(kThreads), 0, stream, 1, p),
      "gather_rows");
}

template Status launch_gather_rows<__half>(const GatherRowsParams<__half>&, cudaStream_t);
template Status launch_gather_rows<__nv_bfloat16>(const GatherRowsParams<__nv_bfloat16>&, cudaStream_t);
template Status launch_gather_rows<float>(const GatherRowsParams<float>&, cudaStream_t);

}  // namespace fdpp::cuda
