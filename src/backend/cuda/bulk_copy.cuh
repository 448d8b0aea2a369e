// Hopper's bulk-copy engine (sm_90): cp.async.bulk moves a contiguous run of global memory into
// shared memory on the TMA unit, one instruction per run instead of one cp.async per 16 bytes,
// and signals its completion on an mbarrier by the bytes it wrote (complete_tx).
//
// Protocol of one buffer guarded by one mbarrier (initialised with an arrival count of 1):
//   one thread: mbarrier_arrive_expect_tx(bar, bytes)   (bytes the copies below will write)
//   any threads: bulk_copy_g2s(dst, src, n, bar)          (n a multiple of 16, both 16-aligned)
//   consumers:   mbarrier_wait_parity(bar, phase)         (phase 0, 1, 0, ... on each reuse)
// The transaction count may go below zero while copies land before the expect_tx: the phase
// completes only once the one arrival has come and the count is back to zero.
// On older GPUs these compile to a trap; callers check bulk_copy_supported() (cuda_device.h) first.
#pragma once

#include <cstdint>

namespace fdpp::cuda::detail {

__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t arrivals) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(arrivals) : "memory");
#else
  __trap();
#endif
}

// Makes initialised mbarriers visible to the bulk-copy engine (the async proxy).
__device__ __forceinline__ void fence_mbarrier_init() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#else
  __trap();
#endif
}

// `bytes` (a multiple of 16) from global `src` to shared `dst` (both 16-byte aligned); completes
// its bytes on `bar`. A CTA's own shared::cta address is a valid shared::cluster address.
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
#else
  __trap();
#endif
}

// One box of a tensor map (tensor_map.h) at element coordinates {c0, c1, c2} (innermost first)
// from global memory to shared `dst`; completes its bytes on `bar`. `map` is the generic address
// of a CUtensorMap in the kernel's parameters (__grid_constant__) or in global memory.
__device__ __forceinline__ void tensor_copy_3d_g2s(uint32_t dst, const void* map, int c0, int c1, int c2,
                                                   uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
#else
  __trap();
#endif
}

// Blocks until the phase of `bar` with the given parity has completed. kCluster: acquire at
// cluster scope, for arrivals from other CTAs of the cluster (cluster.cuh).
template <bool kCluster = false>
__device__ __forceinline__ void mbarrier_wait_parity(uint32_t bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // One polling loop; SEM is the wait's semantics and scope (the default: acquire at CTA scope).
#define FDPP_MBARRIER_WAIT_LOOP(SEM)                                                      \
  asm volatile(                                                                           \
      "{\n"                                                                               \
      ".reg .pred done;\n"                                                                \
      "wait_%=:\n"                                                                        \
      "mbarrier.try_wait.parity" SEM ".shared::cta.b64 done, [%0], %1;\n"                 \
      "@!done bra wait_%=;\n"                                                             \
      "}\n" ::"r"(bar),                                                                   \
      "r"(parity)                                                                         \
      : "memory")
  if constexpr (kCluster) FDPP_MBARRIER_WAIT_LOOP(".acquire.cluster");
  else FDPP_MBARRIER_WAIT_LOOP("");
#undef FDPP_MBARRIER_WAIT_LOOP
#else
  __trap();
#endif
}

}  // namespace fdpp::cuda::detail
