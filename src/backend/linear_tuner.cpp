#include "backend/linear_tuner.h"

#include "fdpp/status.h"
#ifdef FDPP_HAVE_CUDA
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/gemm/linear_tuner_cuda.h"
#endif

namespace fdpp {

std::vector<LinearShape> model_linear_shapes(const ModelConfig& c) {
  const int64_t q_dim = c.num_attention_heads * c.head_dim, kv_dim = c.num_key_value_heads * c.head_dim;
  // The norms before QKV and gate/up fold into them (LlamaModel, Backend::folds_norm_weights);
  // the LM head keeps its own (it may be the embedding table).
  return {{"qkv", q_dim + 2 * kv_dim, c.hidden_size, true, false, true, !c.attention_bias},
          {"o", c.hidden_size, q_dim, false},
          {"gate_up", 2 * c.intermediate_size, c.hidden_size, true, true, true, true},
          {"down", c.hidden_size, c.intermediate_size, false},
          {"lm_head", c.vocab_size, c.hidden_size, true}};
}

std::unique_ptr<LinearTuner> create_linear_tuner(DType dtype) {
#ifdef FDPP_HAVE_CUDA
  if (cuda::device_count() == 0)
    throw Error(ErrorCode::kUnsupported, "fdpp tune: no CUDA device is visible (driver missing or no GPU)");
  return cuda::make_linear_tuner(dtype);
#else
  (void)dtype;
  throw Error(ErrorCode::kUnsupported, "fdpp tune: this fdpp was built without CUDA; tuning needs a GPU");
#endif
}

}  // namespace fdpp
