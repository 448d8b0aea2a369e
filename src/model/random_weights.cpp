#include "model/random_weights.h"

namespace fdpp {

LlamaWeights make_random_weights(const ModelConfig& c, Backend& backend, std::vector<DeviceTensor>& storage,
                                 uint64_t seed) {
  const DType dt = backend.activation_dtype();
  auto make = [&](std::initializer_list<int64_t> shape, float mean) {
    storage.push_back(backend.allocate(dt, shape));
    TensorView& t = storage.back().view();
    backend.fill_random(t, seed++, mean, 0.02f);
    return t;
  };
  const int64_t D = c.hidden_size, F = c.intermediate_size, hd = c.head_dim;
  const int64_t q_dim = c.num_attention_heads * hd, kv_dim = c.num_key_value_heads * hd;
  LlamaWeights w;
  w.embed = make({c.vocab_size, D}, 0.0f);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    LayerWeights L;
    L.input_norm = make({D}, 1.0f);
    L.wq = make({q_dim, D}, 0.0f);
    L.wk = make({kv_dim, D}, 0.0f);
    L.wv = make({kv_dim, D}, 0.0f);
    if (c.attention_bias) {
      L.bq = make({q_dim}, 0.0f);
      L.bk = make({kv_dim}, 0.0f);
      L.bv = make({kv_dim}, 0.0f);
    }
    L.wo = make({D, q_dim}, 0.0f);
    L.post_attn_norm = make({D}, 1.0f);
    L.w_gate = make({F, D}, 0.0f);
    L.w_up = make({F, D}, 0.0f);
    L.w_down = make({D, F}, 0.0f);
    w.layers.push_back(L);
  }
  w.final_norm = make({D}, 1.0f);
  w.lm_head = c.tie_word_embeddings ? w.embed : make({c.vocab_size, D}, 0.0f);
  return w;
}

}  // namespace fdpp
