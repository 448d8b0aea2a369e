#include "model/llama_model.h"

#include <cmath>
#include <cstring>

#include "model/rope.h"

namespace fdpp {
namespace {

TensorView adopt(Backend& backend, const TensorView& w, WeightPlacement placement) {
  if (w.empty() || placement == WeightPlacement::kOnBackend) return w;
  return backend.adopt_weight(w);
}

}  // namespace

LlamaModel::LlamaModel(const ModelConfig& config, const LlamaWeights& host, Backend& backend,
                       WeightPlacement placement)
    : config_(config), backend_(backend) {
  auto adopt = [&](const TensorView& w) { return fdpp::adopt(backend, w, placement); };
  weights_.embed = adopt(host.embed);
  weights_.final_norm = adopt(host.final_norm);
  // A tied LM head is the embedding: adopt once so the GPU holds one copy.
  weights_.lm_head = host.lm_head.data == host.embed.data ? weights_.embed : adopt(host.lm_head);
  weights_.layers.reserve(host.layers.size());
  for (const LayerWeights& h : host.layers) {
    LayerWeights l;
    l.input_norm = adopt(h.input_norm);
    l.wq = adopt(h.wq);
    l.wk = adopt(h.wk);
    l.wv = adopt(h.wv);
    l.bq = adopt(h.bq);
    l.bk = adopt(h.bk);
    l.bv = adopt(h.bv);
    l.wo = adopt(h.wo);
    l.post_attn_norm = adopt(h.post_attn_norm);
    l.w_gate = adopt(h.w_gate);
    l.w_up = adopt(h.w_up);
    l.w_down = adopt(h.w_down);
    weights_.layers.push_back(l);
    for (const TensorView* t : {&l.input_norm, &l.wq, &l.wk, &l.wv, &l.bq, &l.bk, &l.bv, &l.wo,
                                &l.post_attn_norm, &l.w_gate, &l.w_up, &l.w_down})
      if (!t->empty()) weight_bytes_per_step_ += t->nbytes();
  }
  weight_bytes_per_step_ += weights_.final_norm.nbytes() + weights_.lm_head.nbytes();

  inv_freq_host_ = rope_inv_freq(config_);
  inv_freq_ = backend_.upload(TensorView::contiguous(
      inv_freq_host_.data(), DType::kF32, {static_cast<int64_t>(inv_freq_host_.size())}));
}

size_t LlamaModel::kv_bytes_per_token() const {
  return static_cast<size_t>(2 * config_.num_hidden_layers * config_.num_key_value_heads *
                             config_.head_dim) *
         dtype_size(backend_.activation_dtype());
}

void LlamaModel::reserve(int64_t tokens, int64_t rows) {
  if (tokens <= act_.capacity_tokens && rows <= act_.capacity_rows) return;
  const int64_t T = std::max(tokens, act_.capacity_tokens);
  const int64_t R = std::max(rows, act_.capacity_rows);
  const DType dt = backend_.activation_dtype();
  const int64_t D = config_.hidden_size, F = config_.intermediate_size;
  const int64_t q_dim = config_.num_attention_heads * config_.head_dim;
  const int64_t kv_dim = config_.num_key_value_heads * config_.head_dim;
  act_.x = backend_.allocate(dt, {T, D});
  act_.h = backend_.allocate(dt, {T, D});
  act_.q = backend_.allocate(dt, {T, q_dim});
  act_.k = backend_.allocate(dt, {T, kv_dim});
  act_.v = backend_.allocate(dt, {T, kv_dim});
  act_.attn = backend_.allocate(dt, {T, q_dim});
  act_.out = backend_.allocate(dt, {T, D});
  act_.gate = backend_.allocate(dt, {T, F});
  act_.up = backend_.allocate(dt, {T, F});
  act_.last = backend_.allocate(dt, {R, D});
  act_.last_n = backend_.allocate(dt, {R, D});
  act_.logits = backend_.allocate(DType::kF32, {R, config_.vocab_size});
  act_.capacity_tokens = T;
  act_.capacity_rows = R;
}

void LlamaModel::forward(const StepBatch& batch, std::vector<float>& logits) {
  const int64_t T = batch.num_tokens();
  const int64_t R = static_cast<int64_t>(batch.logit_rows.size());
  reserve(T, R);
  backend_.begin_step(batch);

  const int64_t Hq = config_.num_attention_heads, Hkv = config_.num_key_value_heads;
  const int64_t hd = config_.head_dim;
  const float eps = config_.rms_norm_eps;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  TensorView x = act_.x.view().first_rows(T);
  TensorView h = act_.h.view().first_rows(T);
  TensorView q = act_.q.view().first_rows(T);
  TensorView k = act_.k.view().first_rows(T);
  TensorView v = act_.v.view().first_rows(T);
  TensorView attn = act_.attn.view().first_rows(T);
  TensorView out = act_.out.view().first_rows(T);
  TensorView gate = act_.gate.view().first_rows(T);
  TensorView up = act_.up.view().first_rows(T);
  TensorView q_heads = q.reshape({T, Hq, hd});
  TensorView k_heads = k.reshape({T, Hkv, hd});
  TensorView v_heads = v.reshape({T, Hkv, hd});
  TensorView attn_heads = attn.reshape({T, Hq, hd});

  backend_.embed(weights_.embed, x);
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const LayerWeights& w = weights_.layers[l];
    const auto layer = static_cast<int64_t>(l);
    // x += previous block's output (the MLP of layer l-1), h = norm(x)
    if (l == 0) backend_.rmsnorm(x, w.input_norm, eps, h);
    else backend_.add_rmsnorm(x, out, w.input_norm, eps, h);

    backend_.linear(h, w.wq, w.bq, q);
    backend_.linear(h, w.wk, w.bk, k);
    backend_.linear(h, w.wv, w.bv, v);
    backend_.rope(q_heads, inv_freq_);
    backend_.rope(k_heads, inv_freq_);
    backend_.kv_write(layer, k_heads, v_heads);
    backend_.attention(layer, q_heads, scale, attn_heads);
    backend_.linear(attn, w.wo, TensorView{}, out);
    backend_.add_rmsnorm(x, out, w.post_attn_norm, eps, h);

    backend_.linear(h, w.w_gate, TensorView{}, gate);
    backend_.linear(h, w.w_up, TensorView{}, up);
    backend_.silu_mul(gate, up, gate);
    backend_.linear(gate, w.w_down, TensorView{}, out);
  }
  backend_.add(x, out);

  TensorView last = act_.last.view().first_rows(R);
  TensorView last_n = act_.last_n.view().first_rows(R);
  TensorView logits_view = act_.logits.view().first_rows(R);
  backend_.gather_rows(x, last);
  backend_.rmsnorm(last, weights_.final_norm, eps, last_n);
  backend_.linear(last_n, weights_.lm_head, TensorView{}, logits_view);
  logits.resize(static_cast<size_t>(R * config_.vocab_size));
  backend_.logits_to_host(logits_view, logits);
}

}  // namespace fdpp
