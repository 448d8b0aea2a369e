#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/pointwise/pointwise.cuh"

namespace fdpp::cuda {
namespace {

constexpr int kThreads = 128;

// One block per token; threads walk (head, i) pairs. The angle is computed in fp32 as
// position * inv_freq, like HF, and sincosf gives full-precision values.
template <typename T>
__global__ void rope_kernel(const RopeParams<T> p) {
  const int64_t t = blockIdx.x;
  const int64_t half = p.head_dim / 2;
  const float pos = static_cast<float>(p.positions[t]);
  T* x = p.x + t * p.heads * p.head_dim;
  for (int64_t j = threadIdx.x; j < p.heads * half; j += kThreads) {
    const int64_t h = j / half, i = j % half;
    float s, c;
    sincosf(pos * p.inv_freq[i], &s, &c);
    T* head = x + h * p.head_dim;
    const float a = to_float(head[i]), b = to_float(head[i + half]);
    head[i] = from_float<T>(a * c - b * s);
    head[i + half] = from_float<T>(b * c + a * s);
  }
}

}  // namespace

template <typename T>
Status launch_rope(const RopeParams<T>& p, cudaStream_t stream) {
  if (p.tokens <= 0) return Status::ok();
  rope_kernel<T><<<static_cast<unsigned>(p.tokens), kThreads, 0, stream>>>(p);
  return last_launch_status("rope");
}

template Status launch_rope<float>(const RopeParams<float>&, cudaStream_t);
template Status launch_rope<__half>(const RopeParams<__half>&, cudaStream_t);
template Status launch_rope<__nv_bfloat16>(const RopeParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
