// Host-side error checks for CUDA runtime and cuBLASLt calls: failures become fdpp::Error.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include "fdpp/status.h"

namespace fdpp::cuda {

inline void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  const ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::kOutOfMemory : ErrorCode::kInternal;
  cudaGetLastError();
  throw Error(code, fmt::format("CUDA: {}: {}", what, cudaGetErrorString(err)));
}

inline void check(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  throw Error(ErrorCode::kInternal, fmt::format("cuBLASLt: {}: status {}", what, static_cast<int>(st)));
}

}  // namespace fdpp::cuda

#define FDPP_CUDA_CHECK(expr) ::fdpp::cuda::check((expr), #expr)
