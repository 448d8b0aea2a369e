// Thread-block clusters (sm_90): the split cluster barrier, addresses in another CTA's shared
// memory, and asynchronous stores into it that complete on that CTA's mbarrier, for kernels whose
// CTAs hand results to one CTA of their cluster (flat_gemm_streamed.cuh). On older GPUs the
// barrier halves compile to nothing and the rest to a trap: clusters need sm_90.
#pragma once

#include <cstdint>

#include "backend/cuda/bulk_copy.cuh"  // the mbarrier operations

namespace fdpp::cuda::detail {

// The cluster barrier in two halves: every thread of every CTA arrives once (release) and later
// waits once (acquire) for all of them; between the two a thread runs on.
__device__ __forceinline__ void cluster_arrive() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory");
#endif
}

// The shared::cluster address of `smem` (a shared::cta address of this CTA's layout) in CTA `rank`.
__device__ __forceinline__ uint32_t cluster_smem_address(uint32_t smem, uint32_t rank) {
  uint32_t out = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(out) : "r"(smem), "r"(rank));
#else
  __trap();
#endif
  return out;
}

// 8 bytes from another CTA's shared memory (shared::cluster address `src`).
__device__ __forceinline__ uint64_t load_cluster_u64(uint32_t src) {
  uint64_t v = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("ld.shared::cluster.u64 %0, [%1];\n" : "=l"(v) : "r"(src) : "memory");
#else
  __trap();
#endif
  return v;
}

// A 4-byte store into another CTA's shared memory (shared::cluster address `dst`) that completes
// its bytes on that CTA's mbarrier `remote_bar` (complete_tx): no fence and no arrival needed by
// the writer, which may exit at once.
__device__ __forceinline__ void store_async_remote(uint32_t dst, float value, uint32_t remote_bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [%0], %1, [%2];\n" ::"r"(dst),
               "r"(__float_as_uint(value)), "r"(remote_bar)
               : "memory");
#else
  __trap();
#endif
}

}  // namespace fdpp::cuda::detail
