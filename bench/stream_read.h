// The read ceiling at a kernel's own size: a plain streaming read of `bytes` (a sum nobody needs),
// launched like the linear kernels (programmatic dependent launch, first loads before the wait),
// so that bench_linear can say how much of a shape's gap to 3.0 TB/s any kernel reading those
// bytes once would also pay (ramp-up, drain, the launch) and how much is the kernel's own.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

// Reads data[0, bytes) once (bytes a multiple of 16, data 16-byte aligned) and writes at most a
// few bytes of sink (a [1] float; only so the compiler keeps the loads). Enqueues on stream.
cudaError_t stream_read(const void* data, size_t bytes, float* sink, cudaStream_t stream);
