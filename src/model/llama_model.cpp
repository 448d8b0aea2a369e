#include "model/llama_model.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "fdpp/status.h"
#include "model/rope.h"

namespace fdpp {
namespace {

TensorView adopt(Backend& backend, const TensorView& w, WeightPlacement placement) {
  if (w.empty() || placement == WeightPlacement::kOnBackend) return w;
  return backend.adopt_weight(w);
}

}  // namespace

TensorView LlamaModel::fuse_gate_up(const TensorView& gate, const TensorView& up, WeightPlacement placement) {
  if (!backend_.interleaves_gate_up() || placement == WeightPlacement::kOnBackend)
    return fuse_rows({gate, up}, placement);  // weights made on the backend are taken as they lie
  if (gate.dtype != up.dtype || gate.rank != 2 || up.rank != 2 || gate.dim(0) != up.dim(0) ||
      gate.dim(1) != up.dim(1) || !gate.is_contiguous() || !up.is_contiguous())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("cannot fuse gate_proj {} ({}) with up_proj {} ({})", gate.shape_string(),
                            dtype_name(gate.dtype), up.shape_string(), dtype_name(up.dtype)));
  // Row 2j is gate_proj row j and row 2j + 1 up_proj row j (Backend::interleaves_gate_up).
  if (TensorView direct = backend_.adopt_interleaved_rows(gate, up); !direct.empty()) return direct;
  const int64_t F = gate.dim(0);
  const size_t row_bytes = gate.nbytes() / static_cast<size_t>(F);
  std::vector<std::byte> host(2 * gate.nbytes());
  for (int64_t j = 0; j < F; ++j) {
    const size_t offset = static_cast<size_t>(j) * row_bytes;
    std::memcpy(host.data() + 2 * offset, static_cast<const std::byte*>(gate.data) + offset, row_bytes);
    std::memcpy(host.data() + 2 * offset + row_bytes, static_cast<const std::byte*>(up.data) + offset, row_bytes);
  }
  TensorView fused = gate;
  fused.shape[0] = 2 * F;
  fused.data = host.data();
  TensorView adopted = backend_.adopt_weight(fused);
  if (adopted.data == host.data()) fused_host_.push_back(std::move(host));  // the backend reads it in place
  return adopted;
}

TensorView LlamaModel::fuse_rows(std::initializer_list<TensorView> parts, WeightPlacement placement) {
  const TensorView& first = *parts.begin();
  if (first.empty()) return first;  // an absent bias
  int64_t rows = 0;
  bool adjacent = true;
  const char* expected = static_cast<const char*>(first.data);
  for (const TensorView& p : parts) {
    if (p.dtype != first.dtype || p.rank != first.rank || !p.is_contiguous() ||
        (p.rank == 2 && p.dim(1) != first.dim(1)))
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("cannot fuse weights of shapes {} and {} ({} and {})", first.shape_string(),
                              p.shape_string(), dtype_name(first.dtype), dtype_name(p.dtype)));
    adjacent = adjacent && p.data == expected;
    expected = static_cast<const char*>(p.data) + p.nbytes();
    rows += p.dim(0);
  }
  TensorView fused = first;
  fused.shape[0] = rows;
  if (adjacent) return adopt(backend_, fused, placement);
  if (placement == WeightPlacement::kOnBackend)
    throw Error(ErrorCode::kInternal, "weights placed on the backend must lie back to back to be fused");
  const size_t row_bytes = first.nbytes() / static_cast<size_t>(first.dim(0));
  std::vector<std::byte> host(static_cast<size_t>(rows) * row_bytes);
  size_t offset = 0;
  for (const TensorView& p : parts) {
    std::memcpy(host.data() + offset, p.data, p.nbytes());
    offset += p.nbytes();
  }
  fused.data = host.data();
  TensorView adopted = backend_.adopt_weight(fused);
  if (adopted.data == host.data()) fused_host_.push_back(std::move(host));  // the backend reads it in place
  return adopted;
}

LlamaModel::LlamaModel(const ModelConfig& config, const LlamaWeights& host, Backend& backend,
                       WeightPlacement placement)
    : config_(config), backend_(backend) {
  auto adopt = [&](const TensorView& w) { return fdpp::adopt(backend, w, placement); };
  embed_ = adopt(host.embed);
  final_norm_ = adopt(host.final_norm);
  // A tied LM head is the embedding: adopt once so the GPU holds one copy.
  lm_head_ = host.lm_head.data == host.embed.data ? embed_ : adopt(host.lm_head);
  norms_folded_ = backend_.folds_norm_weights();
  if (norms_folded_) {
    unit_norm_host_.assign(static_cast<size_t>(config_.hidden_size), 1.0f);
    unit_norm_ = backend_.adopt_weight(
        TensorView::contiguous(unit_norm_host_.data(), DType::kF32, {config_.hidden_size}));
  }
  layers_.reserve(host.layers.size());
  for (const LayerWeights& h : host.layers) {
    FusedLayerWeights l;
    l.input_norm = adopt(h.input_norm);
    l.wqkv = fuse_rows({h.wq, h.wk, h.wv}, placement);
    l.bqkv = fuse_rows({h.bq, h.bk, h.bv}, placement);
    l.wo = adopt(h.wo);
    l.post_attn_norm = adopt(h.post_attn_norm);
    l.w_gate_up = fuse_gate_up(h.w_gate, h.w_up, placement);
    l.w_down = adopt(h.w_down);
    if (norms_folded_) {  // the LM head keeps its norm: it may be the embedding table (tied)
      backend_.fold_norm_weight(l.wqkv, l.input_norm);
      backend_.fold_norm_weight(l.w_gate_up, l.post_attn_norm);
      l.input_norm = l.post_attn_norm = unit_norm_;
    }
    layers_.push_back(l);
    for (const TensorView* t : {&l.input_norm, &l.wqkv, &l.bqkv, &l.wo, &l.post_attn_norm, &l.w_gate_up, &l.w_down})
      if (!t->empty()) weight_bytes_per_step_ += t->nbytes();
  }
  weight_bytes_per_step_ += final_norm_.nbytes() + lm_head_.nbytes();

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
  act_.qkv = backend_.allocate(dt, {T, q_dim + 2 * kv_dim});
  act_.q = backend_.allocate(dt, {T, q_dim});
  act_.attn = backend_.allocate(dt, {T, q_dim});
  act_.out = backend_.allocate(dt, {T, D});
  act_.gate_up = backend_.allocate(dt, {T, 2 * F});
  act_.act = backend_.allocate(dt, {T, F});
  act_.last = backend_.allocate(dt, {R, D});
  act_.last_n = backend_.allocate(dt, {R, D});
  act_.logits = backend_.allocate(DType::kF32, {R, config_.vocab_size});
  act_.capacity_tokens = T;
  act_.capacity_rows = R;
  ++act_.generation;
}

void LlamaModel::run_step(const StepBatch& batch) {
  const int64_t T = batch.num_tokens();
  const int64_t R = static_cast<int64_t>(batch.logit_rows.size());
  reserve(T, R);
  backend_.begin_step(batch);
  // A backend with a recorded graph of this step's shape replays it instead of the ops.
  if (!backend_.begin_graph_step(act_.generation, config_.num_attention_heads)) {
    run_layers(T, R);
    backend_.end_graph_step();
  }
}

void LlamaModel::copy_logits(int64_t R, std::vector<float>& logits) {
  logits.resize(static_cast<size_t>(R * config_.vocab_size));
  backend_.logits_to_host(act_.logits.view().first_rows(R), logits);
}

void LlamaModel::forward(const StepBatch& batch, std::vector<float>& logits) {
  run_step(batch);
  copy_logits(static_cast<int64_t>(batch.logit_rows.size()), logits);
}

bool LlamaModel::forward_sampled(const StepBatch& batch, std::span<const cuda::DeviceSamplingRow> rows,
                                 std::span<int32_t> tokens, std::vector<float>& logits,
                                 const cuda::PenaltyTokens& penalties) {
  if (static_cast<int64_t>(tokens.size()) != static_cast<int64_t>(batch.logit_rows.size()))
    throw Error(ErrorCode::kInternal,
                fmt::format("forward_sampled: {} rows, {} tokens", batch.logit_rows.size(), tokens.size()));
  if (!launch_sampled(batch, rows, logits, penalties)) return false;
  collect_sampled(tokens);
  return true;
}

bool LlamaModel::launch_sampled(const StepBatch& batch, std::span<const cuda::DeviceSamplingRow> rows,
                                std::vector<float>& logits, const cuda::PenaltyTokens& penalties) {
  const auto R = static_cast<int64_t>(batch.logit_rows.size());
  if (static_cast<int64_t>(rows.size()) != R)
    throw Error(ErrorCode::kInternal, fmt::format("launch_sampled: {} rows, {} parameters", R, rows.size()));
  run_step(batch);
  TensorView step_logits = act_.logits.view().first_rows(R);
  if (backend_.queue_sample_rows(step_logits, rows, penalties)) return true;
  copy_logits(R, logits);
  return false;
}

void LlamaModel::run_layers(int64_t T, int64_t R) {
  const int64_t Hq = config_.num_attention_heads;
  const int64_t hd = config_.head_dim;
  const float eps = config_.rms_norm_eps;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  TensorView x = act_.x.view().first_rows(T);
  TensorView h = act_.h.view().first_rows(T);
  TensorView qkv = act_.qkv.view().first_rows(T);
  TensorView q = act_.q.view().first_rows(T);
  TensorView attn = act_.attn.view().first_rows(T);
  TensorView out = act_.out.view().first_rows(T);
  TensorView gate_up = act_.gate_up.view().first_rows(T);
  TensorView act = act_.act.view().first_rows(T);
  TensorView q_heads = q.reshape({T, Hq, hd});
  TensorView attn_heads = attn.reshape({T, Hq, hd});

  // x is the residual stream. Each norm rides in the prologue of the projection after it and each
  // residual add in the epilogue of the projection before it, where the backend can fuse them;
  // h and out are the scratch of the unfused form (the normalised input, the product).
  const LinearFusion accumulate{TensorView{}, 0.0f, true};
  backend_.embed(embed_, x);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const FusedLayerWeights& w = layers_[l];
    const auto layer = static_cast<int64_t>(l);
    backend_.qkv_projection(layer, x, w.wqkv, w.bqkv, LinearFusion{w.input_norm, eps, false, norms_folded_},
                            inv_freq_, qkv, h, q_heads);
    backend_.attention(layer, q_heads, scale, attn_heads);
    backend_.linear_fused(attn, w.wo, TensorView{}, accumulate, x, out);

    backend_.gate_up_silu(x, w.w_gate_up, LinearFusion{w.post_attn_norm, eps, false, norms_folded_}, act, h,
                          gate_up);
    backend_.linear_fused(act, w.w_down, TensorView{}, accumulate, x, out);
  }

  TensorView last = act_.last.view().first_rows(R);
  TensorView last_n = act_.last_n.view().first_rows(R);
  TensorView logits_view = act_.logits.view().first_rows(R);
  backend_.gather_rows(x, last);
  backend_.linear_fused(last, lm_head_, TensorView{}, LinearFusion{final_norm_, eps}, logits_view, last_n);
}

}  // namespace fdpp
