// Measures the heuristic dataflow's three linear implementations on the present GPU, for
// `fdpp tune`. Declared without CUDA types so that the CLI builds everywhere; without a CUDA build
// or device, create_linear_tuner() throws kUnsupported saying so.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/linear_table.h"
#include "core/dtype.h"
#include "model/config.h"

namespace fdpp {

// A linear layer of a model: out [M, n] = x [M, k] . w [n, k]^T.
struct LinearShape {
  std::string name;  // "qkv", "o", "gate_up", "down", "lm_head"
  int64_t n = 0, k = 0;
  // The model feeds it rmsnorm(x) * g (QKV, gate/up, LM head): the tuner then times each
  // implementation as the forward pass runs it, with the norm fused where the implementation
  // takes it at that M and as a separate RMSNorm launch where it does not.
  bool normed_input = false;
  // The fused gate/up projection, followed by silu(gate) * up: the tuner times the GEMV and the flat
  // GEMM with their gated epilogue (half the output, no silu_mul) and cuBLASLt with the interleaved
  // silu_mul launch after it, as CudaBackend::gate_up_silu runs them.
  bool gated_silu = false;
  // The norm's weight is folded into w (QKV and gate/up; Backend::folds_norm_weights): the norm is
  // only a row scale, fused by the flat GEMM up to M = 16 (its scale-only variant). Where the
  // implementation cannot take it, at most CudaBackend::kDeferredNormMaxRows rows and
  // deferrable_norm, the row scale rides in the product's consumer (qkv_store, the interleaved
  // silu_mul) instead of a norm launch; deferrable_norm is false where a bias must follow the
  // scale (Qwen2's q/k/v bias).
  bool folded_norm = false;
  bool deferrable_norm = false;
};
// The linear shapes one forward pass runs, with the fused QKV and gate/up projections.
std::vector<LinearShape> model_linear_shapes(const ModelConfig& config);

class LinearTuner {
 public:
  virtual ~LinearTuner() = default;
  virtual std::string gpu_name() const = 0;
  // Times every implementation that can serve each M (fresh random operands; weights rotated
  // through copies larger than L2, launches back to back as in a CUDA graph of a decode step).
  // progress(i) is called after ms[i].
  virtual std::vector<LinearTiming> sweep(const LinearShape& shape, const std::vector<int64_t>& ms,
                                          const std::function<void(size_t)>& progress) = 0;
};

// dtype: F16 or BF16.
std::unique_ptr<LinearTuner> create_linear_tuner(DType dtype);

}  // namespace fdpp
