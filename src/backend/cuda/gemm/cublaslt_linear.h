// Linear layers through cuBLASLt: out [M, N] = x [M, K] . w [N, K]^T (+ bias [N]).
// The algorithm is chosen once per (M, N, K, dtypes, bias) and cached. Up to kAutotuneMaxM rows
// (decode steps: the same M every step) it is the fastest of the heuristic's first
// kAutotuneCandidates, timed on the first call's own operands into a scratch output; above that
// (prefill chunks: a new M almost every call, compute-bound), when the stream is being captured
// into a graph, when the scratch cannot be allocated, or with FDPP_CUBLASLT_AUTOTUNE=0, it is the
// heuristic's first. The decode step runs eagerly once before it is captured
// (CudaBackend::begin_graph_step), so its plans are timed too.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
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
  // Heuristic candidates timed per plan (docs/PERF.md has what timing them buys at decode sizes).
  static constexpr int kAutotuneCandidates = 8;
  static constexpr int kAutotuneLaunches = 3;  // timed per candidate, after one warm-up launch
  static constexpr int64_t kAutotuneMaxM = 64;
  Plan& plan_for(const Key& key, const TensorView& x, const TensorView& w, const TensorView& bias);
  // Mean µs of kAutotuneLaunches launches of algo on x, w into the scratch output (of at least
  // out_bytes: reserve_scratch); < 0 when the algorithm fails to launch.
  double time_algorithm(Plan& p, const cublasLtMatmulAlgo_t& algo, const TensorView& x, const TensorView& w);
  // The bias epilogue reads its pointer from the plan's descriptor.
  void set_bias_pointer(Plan& p, const TensorView& bias);
  // Grows the scratch output to out_bytes; false (no timing, nothing thrown) when memory is short.
  bool reserve_scratch(size_t out_bytes);

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 32u << 20;  // 32 MiB: what cuBLASLt's large-shape kernels ask for on Hopper
  std::map<Key, Plan> plans_;
  bool autotune_ = true;
  void* scratch_ = nullptr;  // the timing runs' output (never the caller's: it may be accumulated into)
  size_t scratch_bytes_ = 0;
};

}  // namespace fdpp::cuda
