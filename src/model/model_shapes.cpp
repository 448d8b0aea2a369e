#include "model/model_shapes.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "fdpp/status.h"

namespace fdpp {
namespace {

ModelConfig base(const char* type, ModelFamily family, int64_t d, int64_t f, int64_t layers, int64_t hq, int64_t hkv,
                 int64_t vocab, int64_t ctx, float eps, float theta) {
  ModelConfig c;
  c.model_type = type;
  c.family = family;
  c.hidden_size = d;
  c.intermediate_size = f;
  c.num_hidden_layers = layers;
  c.num_attention_heads = hq;
  c.num_key_value_heads = hkv;
  c.head_dim = d / hq;
  c.vocab_size = vocab;
  c.max_position_embeddings = ctx;
  c.rms_norm_eps = eps;
  c.rope_theta = theta;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

}  // namespace

std::vector<std::string> named_model_shapes() { return {"llama2-7b", "llama3-8b", "qwen2-7b", "mistral-7b", "tiny"}; }

ModelConfig named_model_shape(const std::string& name) {
  if (name == "llama2-7b") return base("llama", ModelFamily::kLlama, 4096, 11008, 32, 32, 32, 32000, 4096, 1e-5f, 1e4f);
  if (name == "llama3-8b") {
    ModelConfig c = base("llama", ModelFamily::kLlama, 4096, 14336, 32, 32, 8, 128256, 8192, 1e-5f, 5e5f);
    c.rope_scaling = {RopeScalingType::kLlama3, 8.0f, 1.0f, 4.0f, 8192};
    return c;
  }
  if (name == "qwen2-7b") {
    ModelConfig c = base("qwen2", ModelFamily::kQwen2, 3584, 18944, 28, 28, 4, 152064, 32768, 1e-6f, 1e6f);
    c.attention_bias = true;
    return c;
  }
  if (name == "mistral-7b") return base("mistral", ModelFamily::kMistral, 4096, 14336, 32, 32, 8, 32000, 32768, 1e-5f, 1e6f);
  if (name == "tiny") return base("llama", ModelFamily::kLlama, 256, 688, 2, 4, 2, 1000, 2048, 1e-5f, 1e4f);
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("unknown model shape '{}': expected one of {}", name, fmt::join(named_model_shapes(), ", ")));
}

}  // namespace fdpp
