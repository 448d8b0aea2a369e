// LlamaWeights: views of every tensor of a Llama-family checkpoint, in the layout Hugging Face
// stores them (row-major [out_features, in_features]). Views point into the mapped files (CPU) or
// device memory (CUDA); the WeightStore that produced them must outlive them.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace fdpp {

class WeightStore;  // model/weight_store.h

struct LayerWeights {
  TensorView input_norm;     // [D]                      input_layernorm.weight
  TensorView wq;             // [Hq*hd, D]               self_attn.q_proj.weight
  TensorView wk;             // [Hkv*hd, D]              self_attn.k_proj.weight
  TensorView wv;             // [Hkv*hd, D]              self_attn.v_proj.weight
  TensorView bq, bk, bv;     // [Hq*hd], [Hkv*hd] x2     q/k/v_proj.bias (empty unless attention_bias)
  TensorView wo;             // [D, Hq*hd]               self_attn.o_proj.weight
  TensorView post_attn_norm; // [D]                      post_attention_layernorm.weight
  TensorView w_gate;         // [F, D]                   mlp.gate_proj.weight
  TensorView w_up;           // [F, D]                   mlp.up_proj.weight
  TensorView w_down;         // [D, F]                   mlp.down_proj.weight
};

struct LlamaWeights {
  TensorView embed;          // [V, D]   model.embed_tokens.weight
  std::vector<LayerWeights> layers;  // [L]
  TensorView final_norm;     // [D]      model.norm.weight
  TensorView lm_head;        // [V, D]   lm_head.weight, or the embedding when tied
};

// Binds every tensor the config requires, checking dtype (F32/F16/BF16) and shape against the
// config. Throws fdpp::Error listing missing tensors by name, unexpected tensors by name (the
// model would silently ignore them otherwise), and shape or dtype mismatches (name, expected,
// found). rotary_emb.inv_freq buffers some checkpoints carry are tolerated.
LlamaWeights bind_llama_weights(const WeightStore& store, const ModelConfig& config);

}  // namespace fdpp
