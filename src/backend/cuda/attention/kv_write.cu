#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/cuda_utils.cuh"

namespace fdpp::cuda {
namespace {

constexpr int kThreads = 128;

// One block per token: copies its Hkv*hd values of k and v into the slot the block table names.
template <typename T>
__global__ void kv_write_kernel(const KvWriteParams<T> p) {
  const int64_t t = blockIdx.x;
  const int32_t pos = p.slots.positions[t];
  const int32_t block = p.slots.block_tables[int64_t{p.slots.token_seq[t]} * p.slots.max_blocks_per_seq +
                                             pos / p.kv.block_size];
  const int64_t row = int64_t{p.kv.num_kv_heads} * p.kv.head_dim;
  const int64_t dst = (int64_t{block} * p.kv.block_size + pos % p.kv.block_size) * row;
  for (int64_t i = threadIdx.x; i < row; i += kThreads) {
    p.kv.k[dst + i] = p.k[t * row + i];
    p.kv.v[dst + i] = p.v[t * row + i];
  }
}

}  // namespace

template <typename T>
Status launch_kv_write(const KvWriteParams<T>& p, cudaStream_t stream) {
  if (p.slots.tokens <= 0) return Status::ok();
  kv_write_kernel<T><<<static_cast<unsigned>(p.slots.tokens), kThreads, 0, stream>>>(p);
  return last_launch_status("kv_write");
}

template Status launch_kv_write<__half>(const KvWriteParams<__half>&, cudaStream_t);
template Status launch_kv_write<__nv_bfloat16>(const KvWriteParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
