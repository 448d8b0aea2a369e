#include "model/random_weights.h"

namespace fdpp {
namespace {

// Rows [first, first + count) of a contiguous tensor (rank 1 or 2).
TensorView row_range(const TensorView& t, int64_t first, int64_t count) {
  TensorView v = t;
  v.data = static_cast<char*>(t.data) + static_cast<size_t>(first * t.stride[0]) * dtype_size(t.dtype);
  v.shape[0] = count;
  return v;
}

}  // namespace

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
    // Projections that LlamaModel fuses are made back to back, so it fuses them without a copy.
    const TensorView wqkv = make({q_dim + 2 * kv_dim, D}, 0.0f);
    L.wq = row_range(wqkv, 0, q_dim);
    L.wk = row_range(wqkv, q_dim, kv_dim);
    L.wv = row_range(wqkv, q_dim + kv_dim, kv_dim);
    if (c.attention_bias) {
      const TensorView bqkv = make({q_dim + 2 * kv_dim}, 0.0f);
      L.bq = row_range(bqkv, 0, q_dim);
      L.bk = row_range(bqkv, q_dim, kv_dim);
      L.bv = row_range(bqkv, q_dim + kv_dim, kv_dim);
    }
    L.wo = make({D, q_dim}, 0.0f);
    L.post_attn_norm = make({D}, 1.0f);
    const TensorView gate_up = make({2 * F, D}, 0.0f);
    L.w_gate = row_range(gate_up, 0, F);
    L.w_up = row_range(gate_up, F, F);
    L.w_down = make({D, F}, 0.0f);
    w.layers.push_back(L);
  }
  w.final_norm = make({D}, 1.0f);
  w.lm_head = c.tie_word_embeddings ? w.embed : make({c.vocab_size, D}, 0.0f);
  return w;
}

}  // namespace fdpp
