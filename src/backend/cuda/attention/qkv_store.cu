#include <algorithm>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/pointwise/row_rms.cuh"

namespace fdpp::cuda {
namespace {

// Grid (T, head groups). A block takes kThreads rotation pairs (i, i + hd/2) of consecutive heads
// of one token, in the order q heads, k heads, v heads; a thread computes the sin/cos of its own
// pair. Spreading a token over blocks matters at decode: one block per token left a batch-1 step's
// 4096 pairs to a single SM (~30 us per layer on Llama-2-7B). With a deferred norm every block
// first computes its token's inv rms, so those blocks are 4x wider (a quarter of the row reads).
constexpr int kThreads = 128;
constexpr int kRowScaledThreads = 512;

template <typename T, int kBlockThreads>
__global__ void __launch_bounds__(kBlockThreads) qkv_store_kernel(const QkvStoreParams<T> p) {
  launch_dependents_early();  // the split's early KV loads start during the QKV projection's tail
  enter_dependent_grid();
  const int64_t t = blockIdx.x;
  const float s = p.scale.rows == nullptr
                      ? 1.0f
                      : block_row_inv_rms<kBlockThreads>(p.scale.rows + t * p.scale.dim, p.scale.dim, p.scale.eps);
  const int hd = p.kv.head_dim, half = hd / 2, hq = p.num_q_heads, hkv = p.kv.num_kv_heads;
  const int heads_per_block = max(1, kBlockThreads / half);
  const int32_t pos = p.slots.positions[t];
  const int32_t block = p.slots.block_tables[int64_t{p.slots.token_seq[t]} * p.slots.max_blocks_per_seq +
                                             pos / p.kv.block_size];
  const int64_t slot = (int64_t{block} * p.kv.block_size + pos % p.kv.block_size) * (int64_t{hkv} * hd);
  const T* src = p.qkv + t * (int64_t{hq} + 2 * hkv) * hd;
  const int first_head = blockIdx.y * heads_per_block;
  const int heads = min(heads_per_block, hq + 2 * hkv - first_head);
  for (int j = threadIdx.x; j < heads * half; j += kBlockThreads) {
    const int head = first_head + j / half, i = j % half;
    const T* in = src + int64_t{head} * hd;
    if (head >= hq + hkv) {  // a v head: copied (times s = 1, exact, without a deferred norm)
      T* dst = p.kv.v + slot + int64_t{head - hq - hkv} * hd;
      dst[i] = from_float<T>(to_float(in[i]) * s);
      dst[i + half] = from_float<T>(to_float(in[i + half]) * s);
      continue;
    }
    float sin_i, cos_i;
    sincosf(static_cast<float>(pos) * p.inv_freq[i], &sin_i, &cos_i);
    const float a = to_float(in[i]) * s, b = to_float(in[i + half]) * s;
    T* dst = head < hq ? p.q_out + (t * hq + head) * hd : p.kv.k + slot + int64_t{head - hq} * hd;
    dst[i] = from_float<T>(a * cos_i - b * sin_i);
    dst[i + half] = from_float<T>(b * cos_i + a * sin_i);
  }
}

}  // namespace

template <typename T>
Status launch_qkv_store(const QkvStoreParams<T>& p, cudaStream_t stream) {
  if (p.slots.tokens <= 0) return Status::ok();
  if (p.kv.head_dim % 2 != 0 || p.kv.head_dim <= 0)
    return {ErrorCode::kUnsupported, "qkv_store: head_dim must be even"};
  const int half = p.kv.head_dim / 2;
  const int threads = p.scale.rows == nullptr ? kThreads : kRowScaledThreads;
  const int heads_per_block = std::max(1, threads / half);
  const int heads = p.num_q_heads + 2 * p.kv.num_kv_heads;
  const dim3 grid(static_cast<unsigned>(p.slots.tokens), ceil_div(heads, heads_per_block));
  void (*kernel)(QkvStoreParams<T>) =
      p.scale.rows == nullptr ? qkv_store_kernel<T, kThreads> : qkv_store_kernel<T, kRowScaledThreads>;
  return launch_status(launch_kernel(kernel, grid, dim3(threads), 0, stream, 1, p), "qkv_store");
}

template Status launch_qkv_store<__half>(const QkvStoreParams<__half>&, cudaStream_t);
template Status launch_qkv_store<__nv_bfloat16>(const QkvStoreParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace fdpp::cuda
