// Linear layers through cuBLASLt: out [M, N] = x [M, K] . w [N, K]^T (+ bias [N]).
// The heuristic's algorithm is chosen once per (M, N, K, dtypes) and cached.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <tuple>

#include "core/tensor.h"

namespace fdpp::cuda {

class CublasLtLinear {
 public:
  explicit CublasLtLinear(cudaStream_t stream);
  ~CublasLtLinear();
  CublasLtLinear(const CublasLtLinear&) = delete;
  CublasLtLinear& operator=(const CublasLtLinear&) = delete;

  // x, w, bias: F16 or BF16 (the same); out: the same dtype or F32. accumulate: out += the
  // product (beta = 1, in place). Throws fdpp::Error.
  void run(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out, bool accumulate = false);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, int, int, bool>;  // M, N, K, in, out, bias
  Plan& plan_for(const Key& key);

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 32u << 20;  // 32 MiB: what cuBLASLt's large-shape kernels ask for on Hopper
  std::map<Key, Plan> plans_;
};

}  // namespace fdpp::cuda
