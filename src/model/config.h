// ModelConfig: the Llama-family hyper-parameters read from a Hugging Face config.json
// (plus generation_config.json for eos ids when present).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace fdpp {

enum class ModelFamily : uint8_t { kLlama, kMistral, kQwen2 };

enum class RopeScalingType : uint8_t { kNone, kLinear, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  float factor = 1.0f;                          // linear and llama3
  float low_freq_factor = 1.0f;                 // llama3
  float high_freq_factor = 4.0f;                // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct ModelConfig {
  ModelFamily family = ModelFamily::kLlama;
  std::string model_type;             // as written in config.json: "llama", "mistral", "qwen2"
  int64_t hidden_size = 0;            // D
  int64_t intermediate_size = 0;      // F (MLP hidden)
  int64_t num_hidden_layers = 0;      // L
  int64_t num_attention_heads = 0;    // Hq
  int64_t num_key_value_heads = 0;    // Hkv (GQA: Hq % Hkv == 0); defaults to Hq
  int64_t head_dim = 0;               // defaults to D / Hq
  int64_t vocab_size = 0;             // V
  int64_t max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;        // q/k/v bias: true for qwen2, or "attention_bias": true
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids; // config.json and generation_config.json, merged, unique
  std::optional<DType> torch_dtype;   // informational: the checkpoint's declared dtype
  // Sliding-window attention is not implemented: when a window is active, the usable context is
  // capped at it (sequences shorter than the window see identical results). 0 = no window.
  int64_t sliding_window = 0;

  // Longest sequence (prompt + generated) the runtime accepts.
  int64_t context_limit() const {
    return sliding_window > 0 && sliding_window < max_position_embeddings ? sliding_window
                                                                          : max_position_embeddings;
  }
};

// Reads DIR/config.json (and DIR/generation_config.json if present). Throws fdpp::Error naming
// the file and field on: missing or malformed file, missing required field, wrong JSON type,
// unsupported model_type or hidden_act, invalid values (non-positive sizes, Hq % Hkv != 0,
// head_dim odd), unsupported rope_scaling type.
ModelConfig load_model_config(const std::filesystem::path& model_dir);

// Same, from JSON text; `source` names the file in error messages.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);

}  // namespace fdpp
