// Kernel launches with programmatic dependent launch (PDL, sm_90+).
//
// Why: a decode step is ~260 short kernels back to back (Llama-2-7B, 32 layers). Between two of
// them the GPU drains the last wave of the first, then launches and ramps up the second: ~1-2 us
// per boundary in which the memory system idles. With PDL the next grid is launched while the
// previous one still runs (once every CTA of the previous grid has passed its
// enter_dependent_grid()); its CTAs may already issue loads that do not depend on the previous
// grid (the linear kernels' first weight loads: weights never change during a step) and then
// block in enter_dependent_grid() until the previous grid has completed and its writes are
// visible.
//
// The contract, for every kernel launched through launch_kernel(): each thread calls
// enter_dependent_grid() before it reads anything an earlier kernel wrote and before it writes
// anything (an earlier kernel may still read it). Its second half lets the next grid launch right
// after the wait, so at most one grid waits ahead; a kernel whose successor is known calls
// launch_dependents_early() first, so that grid launches (and issues its early loads) while this
// one still waits (see there for which kernels may). Both instructions are no-ops in a grid
// launched without the attribute (before sm_90, with FDPP_PDL=0, or after a copy), and a kernel
// that follows in the stream without the attribute (cuBLASLt's) waits for full completion as
// usual. Stream capture keeps the programmatic edges in the step's CUDA graph.
//
// Two rules follow. Data an earlier kernel wrote is read after the wait through coherent loads
// (ld.global, cp.async), never ld.global.nc / __ldg: the read-only cache is not refreshed by the
// wait. And the loads a kernel issues before its wait touch only data that the kernel right
// before it cannot be writing. When a grid runs, every kernel before its predecessor has
// completed (the predecessor has passed its own wait), so that is data no kernel wrote since:
//  * weights, which nothing writes once they are uploaded (CudaBackend synchronises its stream
//    after every weight conversion or random fill, so no linear kernel launches behind one);
//  * the decode attention's KV-cache positions before the row's own: earlier steps wrote them,
//    and the step's qkv_store (the predecessor) writes only the rows' own positions.
//    The step metadata (positions, block tables) came by a copy earlier in the stream.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_device.h"  // programmatic_launch_enabled

namespace fdpp::cuda {

// Lets the next grid launch before this one's wait (griddepcontrol.launch_dependents alone), so
// two grids may wait ahead of a running one. Only for kernels whose successor's pre-wait work is
// safe while the kernel before this one still runs, too: qkv_store (its successor, the decode
// split, prefetches KV positions that neither it nor the QKV projection writes) and the attention
// merge (its successors, the O projection's linear kernels, prefetch weights; in the attention
// bench, the next split). Every CTA of this grid is resident when the next one launches, so the
// waiting grids cannot starve it of slots.
__device__ __forceinline__ void launch_dependents_early() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The prologue of a launched kernel's dependent part: blocks the calling thread until every grid
// this one depends on has completed and its memory operations are visible
// (griddepcontrol.wait), then lets the next grid in the stream launch once every CTA of this
// grid has got here or exited (griddepcontrol.launch_dependents: a hint; the next grid still
// waits for this one's completion before touching its data).
__device__ __forceinline__ void enter_dependent_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
  launch_dependents_early();  // a second call in a grid that already made it changes nothing
}

// The launch attribute for clusters of cluster_x CTAs along x (launches and occupancy queries).
inline cudaLaunchAttribute cluster_attribute(unsigned cluster_x) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = cluster_x;
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  return attr;
}

// kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute where enabled and
// `programmatic` asks for it, and, when cluster_x > 1, clusters of cluster_x CTAs along x.
// Returns the launch's error.
template <typename... Params, typename... Args>
cudaError_t launch_kernel_with(bool programmatic, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                               cudaStream_t stream, unsigned cluster_x, Args&&... args) {
  cudaLaunchAttribute attrs[2] = {};
  unsigned n = 0;
  // Not on the legacy default stream, whose implicit synchronisation with other streams PDL
  // does not promise to keep.
  if (programmatic && stream != nullptr && programmatic_launch_enabled()) {
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  if (cluster_x > 1) attrs[n++] = cluster_attribute(cluster_x);
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attrs;
  config.numAttrs = n;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

// launch_kernel_with, with the PDL attribute wherever it is enabled.
template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                          unsigned cluster_x, Args&&... args) {
  return launch_kernel_with(true, kernel, grid, block, smem, stream, cluster_x, std::forward<Args>(args)...);
}

}  // namespace fdpp::cuda
