// The fused QKV projection's decode epilogue, shared by the GEMV and the streamed flat GEMM:
// instead of writing the product [M, (Hq + 2 Hkv) * hd] for qkv_store to split, the kernel that
// finishes the rotation pair (i, i + hd / 2) of a head rotates it (q and k heads: rotate-half
// RoPE, angle positions[m] * inv_freq[i] in fp32, as qkv_store computes it) and stores q into
// q_out and k, v into token m's slot of the paged cache. Host-includable (the device part is
// compiled by nvcc only).
#pragma once

#include <cstdint>
#include <string>

#if defined(__CUDACC__)
#include "backend/cuda/cuda_utils.cuh"  // from_float
#endif

#include "fdpp/status.h"

namespace fdpp::cuda {

template <typename T>
struct RopeStore {
  T* q_out = nullptr;                     // [M, Hq, hd]; set to enable the epilogue
  T* k_cache = nullptr;                   // [num_blocks, block_size, Hkv, hd]
  T* v_cache = nullptr;                   // [num_blocks, block_size, Hkv, hd]
  const float* inv_freq = nullptr;        // [hd / 2]
  const int32_t* positions = nullptr;     // [M] position of token m in its sequence
  const int32_t* token_seq = nullptr;     // [M] its sequence
  const int32_t* block_tables = nullptr;  // [S, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0, block_size = 0;
  int32_t num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
};

// The conditions both kernels share: head_dim a positive multiple of hd_multiple (2 for the
// GEMV's pairs, 16 for the flat GEMM's 8-pair tiles), N = (Hq + 2 Hkv) * hd, no other output
// (out, out_f32, residual, gated epilogue: other_outputs) and every pointer.
template <typename T>
Status check_rope_store(const char* kernel, const RopeStore<T>& s, int64_t N, int hd_multiple, bool other_outputs) {
  const std::string who = std::string(kernel) + ": the QKV epilogue ";
  if (s.head_dim <= 0 || s.head_dim % hd_multiple != 0 || s.num_q_heads <= 0 || s.num_kv_heads <= 0 ||
      N != int64_t{s.num_q_heads + 2 * s.num_kv_heads} * s.head_dim)
    return {ErrorCode::kUnsupported, who + "needs head_dim % " + std::to_string(hd_multiple) +
                                         " == 0 and N = (Hq + 2 Hkv) * hd, found N = " + std::to_string(N) +
                                         ", Hq = " + std::to_string(s.num_q_heads) + ", Hkv = " +
                                         std::to_string(s.num_kv_heads) + ", hd = " + std::to_string(s.head_dim)};
  if (other_outputs)
    return {ErrorCode::kUnsupported, who + "writes q_out and the cache only: no out, residual or gate"};
  if (s.k_cache == nullptr || s.v_cache == nullptr || s.inv_freq == nullptr || s.positions == nullptr ||
      s.token_seq == nullptr || s.block_tables == nullptr || s.block_size <= 0 || s.max_blocks_per_seq <= 0)
    return {ErrorCode::kInvalidArgument, who + "needs the cache, its block tables and the positions"};
  return Status::ok();
}

#if defined(__CUDACC__)
// Token m's finished products a, b of rows `row` = head * hd + i and row + hd / 2 (i < hd / 2):
// rotated for q and k heads, then stored.
template <typename T>
__device__ __forceinline__ void store_rope_pair(const RopeStore<T>& s, int m, int64_t row, float a, float b) {
  const int hd = s.head_dim, half = hd / 2, hq = s.num_q_heads, hkv = s.num_kv_heads;
  const int head = static_cast<int>(row / hd), i = static_cast<int>(row % hd);
  const int32_t pos = s.positions[m];
  if (head < hq + hkv) {
    float sin_i, cos_i;
    sincosf(static_cast<float>(pos) * s.inv_freq[i], &sin_i, &cos_i);
    const float ra = a * cos_i - b * sin_i, rb = b * cos_i + a * sin_i;
    a = ra;
    b = rb;
  }
  T* dst;
  if (head < hq) {
    dst = s.q_out + (int64_t{m} * hq + head) * hd;
  } else {
    const int32_t block = s.block_tables[int64_t{s.token_seq[m]} * s.max_blocks_per_seq + pos / s.block_size];
    const int64_t slot = (int64_t{block} * s.block_size + pos % s.block_size) * (int64_t{hkv} * hd);
    dst = head < hq + hkv ? s.k_cache + slot + int64_t{head - hq} * hd : s.v_cache + slot + int64_t{head - hq - hkv} * hd;
  }
  dst[i] = from_float<T>(a);
  dst[i + half] = from_float<T>(b);
}
#endif

}  // namespace fdpp::cuda
