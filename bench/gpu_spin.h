// Keeps the GPU busy for a while so that the host can enqueue a timed launch and its events
// before the GPU reaches them: event timings then measure the kernel, not the host's launch cost.
#pragma once

#include <cuda_runtime.h>

void gpu_spin(cudaStream_t stream, int microseconds);
