// bind_llama_weights: Hugging Face tensor names -> LlamaWeights, checked against the config.
#include "model/weights.h"

#include <fmt/format.h>

#include <set>
#include <string>
#include <vector>

#include "fdpp/status.h"
#include "model/weight_store.h"

namespace fdpp {

namespace {

constexpr size_t kMaxListed = 10;  // names listed per category before "... and N more"

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Collects every problem, so one error tells the user all that is wrong with the checkpoint.
class Binder {
 public:
  Binder(const WeightStore& store) : store_(store) {}

  // Binds `name` if present with the expected shape and a float dtype; records problems otherwise.
  TensorView bind(const std::string& name, std::vector<int64_t> expected, bool required = true) {
    const TensorView* t = store_.find(name);
    if (t == nullptr) {
      if (required) missing_.push_back(name);
      return {};
    }
    used_.insert(name);
    bool ok = true;
    if (t->dtype != DType::kF32 && t->dtype != DType::kF16 && t->dtype != DType::kBF16) {
      dtype_problems_.push_back(fmt::format("tensor '{}': dtype {} is not supported (expected F32, F16 or BF16)",
                                            name, dtype_name(t->dtype)));
      ok = false;
    }
    const std::vector<int64_t> found(t->shape.begin(), t->shape.begin() + t->rank);
    if (found != expected) {
      shape_problems_.push_back(fmt::format("tensor '{}': expected shape {}, found {}", name, shape_text(expected),
                                            shape_text(found)));
      ok = false;
    }
    return ok ? *t : TensorView{};
  }

  // Throws one error listing every problem, if there is any.
  void check(const ModelConfig& config) const {
    std::vector<std::string> unexpected;
    for (const std::string& name : store_.names()) {
      if (used_.count(name) == 0 && !ends_with(name, ".rotary_emb.inv_freq")) unexpected.push_back(name);
    }
    if (missing_.empty() && unexpected.empty() && shape_problems_.empty() && dtype_problems_.empty()) return;

    std::string msg = fmt::format("{}: the checkpoint does not match config.json ({}, {} layers, hidden_size {}):",
                                  store_.dir().string(), config.model_type, config.num_hidden_layers,
                                  config.hidden_size);
    auto list = [&msg](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      msg += fmt::format("\n  {} {} tensor{}:", names.size(), what, names.size() == 1 ? "" : "s");
      for (size_t i = 0; i < names.size() && i < kMaxListed; ++i) {
        msg += fmt::format("{} '{}'", i == 0 ? "" : ",", names[i]);
      }
      if (names.size() > kMaxListed) msg += fmt::format(", ... and {} more", names.size() - kMaxListed);
    };
    auto lines = [&msg](const std::vector<std::string>& problems, const char* what) {
      for (size_t i = 0; i < problems.size() && i < 2 * kMaxListed; ++i) msg += "\n  " + problems[i];
      if (problems.size() > 2 * kMaxListed) {
        msg += fmt::format("\n  ... and {} more {}", problems.size() - 2 * kMaxListed, what);
      }
    };
    list("missing", missing_);
    list("unexpected", unexpected);
    lines(shape_problems_, "shape mismatches");
    lines(dtype_problems_, "unsupported dtypes");

    const ErrorCode code = !missing_.empty()                                          ? ErrorCode::kNotFound
                           : unexpected.empty() && shape_problems_.empty()            ? ErrorCode::kUnsupported
                                                                                      : ErrorCode::kInvalidArgument;
    throw Error(code, msg);
  }

 private:
  const WeightStore& store_;
  std::set<std::string> used_;
  std::vector<std::string> missing_;
  std::vector<std::string> shape_problems_;
  std::vector<std::string> dtype_problems_;
};

}  // namespace

LlamaWeights bind_llama_weights(const WeightStore& store, const ModelConfig& config) {
  const int64_t D = config.hidden_size;
  const int64_t F = config.intermediate_size;
  const int64_t V = config.vocab_size;
  const int64_t q_dim = config.num_attention_heads * config.head_dim;
  const int64_t kv_dim = config.num_key_value_heads * config.head_dim;

  Binder b(store);
  LlamaWeights w;
  w.embed = b.bind("model.embed_tokens.weight", {V, D});
  w.layers.resize(static_cast<size_t>(config.num_hidden_layers));
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = fmt::format("model.layers.{}.", i);
    l.input_norm = b.bind(p + "input_layernorm.weight", {D});
    l.wq = b.bind(p + "self_attn.q_proj.weight", {q_dim, D});
    l.wk = b.bind(p + "self_attn.k_proj.weight", {kv_dim, D});
    l.wv = b.bind(p + "self_attn.v_proj.weight", {kv_dim, D});
    if (config.attention_bias) {
      l.bq = b.bind(p + "self_attn.q_proj.bias", {q_dim});
      l.bk = b.bind(p + "self_attn.k_proj.bias", {kv_dim});
      l.bv = b.bind(p + "self_attn.v_proj.bias", {kv_dim});
    }
    l.wo = b.bind(p + "self_attn.o_proj.weight", {D, q_dim});
    l.post_attn_norm = b.bind(p + "post_attention_layernorm.weight", {D});
    l.w_gate = b.bind(p + "mlp.gate_proj.weight", {F, D});
    l.w_up = b.bind(p + "mlp.up_proj.weight", {F, D});
    l.w_down = b.bind(p + "mlp.down_proj.weight", {D, F});
  }
  w.final_norm = b.bind("model.norm.weight", {D});
  // Tied checkpoints usually omit lm_head.weight; when one is present anyway it is used.
  const bool has_lm_head = store.find("lm_head.weight") != nullptr;
  if (!config.tie_word_embeddings || has_lm_head) {
    w.lm_head = b.bind("lm_head.weight", {V, D});
  } else {
    w.lm_head = w.embed;
  }
  b.check(config);
  return w;
}

}  // namespace fdpp
