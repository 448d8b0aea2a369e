// The heuristic dataflow at run time: every linear layer goes to the GEMV, the flat GEMM or
// cuBLASLt by its M and the inflection points of its shape [N, K] (backend/linear_table.h),
// falling through to the next implementation when one cannot serve the operands (M above its
// largest, K % 8 != 0 or unaligned pointers for the flat GEMM). FDPP_LINEAR_IMPL=gemv, flat_gemm
// or cublaslt prefers one implementation wherever it can run (end-to-end comparisons, debugging).
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "backend/backend.h"
#include "backend/cuda/gemm/cublaslt_linear.h"
#include "backend/cuda/gemm/rope_store.cuh"
#include "backend/linear_table.h"
#include "core/tensor.h"

namespace fdpp::cuda {

class LinearDispatcher {
 public:
  LinearDispatcher(cudaStream_t stream, std::string gpu_name, LinearTable table);

  // out [M, N] = x [M, K] . w [N, K]^T (+ bias [N]); x, w, bias in the activation dtype (F16 or
  // BF16), out the same or F32. Throws fdpp::Error.
  void run(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out);
  // out [M, N] = input . w^T (+ bias) (+ out's own values when fusion.accumulate: the residual
  // add in the product's epilogue, rounded once). input is x, or rmsnorm(x) * fusion.norm_weight
  // when that is set, which the GEMV (M <= 4) and the flat GEMM's streamed mainloop (M <= 8)
  // fuse: then, unless the choice for these operands is one of them and can take the norm, this
  // launches nothing and returns false (the caller normalises first). Otherwise true. Throws
  // fdpp::Error.
  bool run_fused(const TensorView& x, const TensorView& w, const TensorView& bias, const LinearFusion& fusion,
                 TensorView& out);
  // The gated SiLU projection: out [M, N / 2] = silu(gate) * up of x (or rmsnorm(x) *
  // norm.norm_weight) by the fused gate/up matrix w [N, K] with interleaved rows (row 2j gate, 2j + 1
  // up), written by the kernel's epilogue. can_gate_silu: whether impl takes that epilogue for
  // these operands (the GEMV, and the flat GEMM's streamed mainloop); run_gated_silu_with runs it
  // (a norm needs can_fuse_norm). Throws fdpp::Error.
  bool can_gate_silu(LinearImpl impl, const TensorView& x, const TensorView& w) const;
  void run_gated_silu_with(LinearImpl impl, const TensorView& x, const TensorView& w, const LinearFusion& norm,
                           TensorView& out);
  // The QKV projection's decode epilogue (gemm/rope_store.cuh): x . w^T (+ bias) with q and k
  // rotated and q, k, v stored into rope's q_out and paged cache instead of an output.
  // can_rope_store: whether impl takes it for these operands and head dim (the GEMV; the flat
  // GEMM's streamed mainloop up to kFlatGemmRopeMaxM rows); run_rope_store_with runs it (a norm
  // needs can_fuse_norm; T the activation type, __half or __nv_bfloat16). Throws fdpp::Error.
  bool can_rope_store(LinearImpl impl, const TensorView& x, const TensorView& w, int64_t head_dim) const;
  template <typename T>
  void run_rope_store_with(LinearImpl impl, const TensorView& x, const TensorView& w, const TensorView& bias,
                           const LinearFusion& norm, const RopeStore<T>& rope);
  // The implementation run() picks for these operands; choose_gated: the one for the gated SiLU
  // projection (the same table, another default for shapes it does not list).
  LinearImpl choose(const TensorView& x, const TensorView& w) const;
  LinearImpl choose_gated(const TensorView& x, const TensorView& w) const;
  // Whether an implementation can serve these operands at all.
  bool can_run(LinearImpl impl, const TensorView& x, const TensorView& w) const;
  // Runs the given implementation (can_run must hold): for tuning, benchmarks and tests.
  void run_with(LinearImpl impl, const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out);
  // Whether run_fused would fuse norm's RMSNorm (norm.norm_weight, set) into this implementation
  // for these operands; a unit (folded) weight, norm.unit_norm_weight, the flat GEMM's scale-only
  // variant takes up to FlatGemmTraits::kScaleOnlyNormFusionMaxM rows.
  bool can_fuse_norm(LinearImpl impl, const TensorView& x, const TensorView& w, const LinearFusion& norm) const;
  // run_with with the fusion applied in the kernel (a norm needs can_fuse_norm): for tuning.
  void run_with(LinearImpl impl, const TensorView& x, const TensorView& w, const TensorView& bias,
                const LinearFusion& fusion, TensorView& out);

  const std::string& gpu_name() const { return gpu_; }
  // Calls per implementation since construction: [gemv, flat_gemm, cublaslt].
  const std::array<uint64_t, 3>& calls() const { return calls_; }

 private:
  LinearInflection inflection(DType dtype, int64_t n, int64_t k, bool gated) const;
  LinearImpl choose(const TensorView& x, const TensorView& w, bool gated) const;
  // Runs impl with the fusion; the callers have checked that it can (choose, run_with, run_fused).
  void launch(LinearImpl impl, const TensorView& x, const TensorView& w, const TensorView& bias,
              const LinearFusion& fusion, TensorView& out, bool gated_silu = false);

  cudaStream_t stream_;
  std::string gpu_;
  LinearTable table_;
  CublasLtLinear cublaslt_;
  mutable std::map<std::tuple<int, int64_t, int64_t, bool>, LinearInflection> cache_;  // (dtype, N, K, gated)
  std::optional<LinearImpl> forced_;  // FDPP_LINEAR_IMPL=gemv|flat_gemm|cublaslt: for comparisons
  std::array<uint64_t, 3> calls_{};
};

}  // namespace fdpp::cuda
