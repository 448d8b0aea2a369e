#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/cuda_utils.cuh"

namespace fdpp::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxHalfDim = 256;  // head_dim <= 512: the cos/sin table of a token in shared memory

// One block per token. The token's cos/sin table is computed once into shared memory (one sincosf
// per frequency instead of one per head), then threads walk the rotation pairs of the q and k heads
// and the values of the v heads.
template <typename T>
__global__ void qkv_store_kernel(const QkvStoreParams<T> p) {
  __shared__ float cos_t[kMaxHalfDim], sin_t[kMaxHalfDim];
  const int64_t t = blockIdx.x;
  const int hd = p.kv.head_dim, half = hd / 2, hq = p.num_q_heads, hkv = p.kv.num_kv_heads;
  const int32_t pos = p.slots.positions[t];
  for (int i = threadIdx.x; i < half; i += kThreads) sincosf(static_cast<float>(pos) * p.inv_freq[i], &sin_t[i], &cos_t[i]);
  __syncthreads();

  const int32_t block = p.slots.block_tables[int64_t{p.slots.token_seq[t]} * p.slots.max_blocks_per_seq +
                                             pos / p.kv.block_size];
  const int64_t kv_row = int64_t{hkv} * hd;
  const int64_t slot = (int64_t{block} * p.kv.block_size + pos % p.kv.block_size) * kv_row;
  const T* src = p.qkv + t * (int64_t{hq} + 2 * hkv) * hd;
  // Rotation pairs (i, i + half) of the q heads, then of the k heads.
  for (int j = threadIdx.x; j < (hq + hkv) * half; j += kThreads) {
    const int head = j / half, i = j - head * half;
    const T* in = src + int64_t{head} * hd;
    const float a = to_float(in[i]), b = to_float(in[i + half]);
    T* dst = head < hq ? p.q_out + (t * hq + head) * hd : p.kv.k + slot + int64_t{head - hq} * hd;
    dst[i] = from_float<T>(a * cos_t[i] - b * sin_t[i]);
    dst[i + half] = from_float<T>(b * cos_t[i] + a * sin_t[i]);
  }
  const T* v = src + (int64_t{hq} + hkv) * hd;
  for (int64_t i = threadIdx.x; i < kv_row; i += kThreads) p.kv.v[slot + i] = v[i];
}

}  // namespace

template <typename T>
Status launch_qkv_store(const QkvStoreParams<T>& p, cudaStream_t stream) {
  if (p.slots.tokens <= 0) return Status::ok();
  if (p.kv.head_dim % 2 != 0 || p.kv.head_dim / 2 > kMaxHalfDim)
    return {ErrorCode::kUnsupported, "qkv_store: head_dim must be even and at most 512"};
  qkv_store_kernel<T><<<static_cast<unsigned>(p.slots.tokens), kThreads, 0, stream>>>(p);
  return last_launch_status("qkv_store");
}

template Status launch_qkv_store<__half>(const QkvStoreParams<__half>&, cudaStream_t);
template Status launch_qkv_store<__nv_bfloat16>(const QkvStoreParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
