// config.json -> ModelConfig. Field names and defaults follow Hugging Face's LlamaConfig,
// MistralConfig and Qwen2Config; every error names the file, the field, expected vs found.
#include "model/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/json_file.h"
#include "fdpp/status.h"

namespace fdpp {

namespace {

using json = nlohmann::json;

std::string show(const json& v) { return show_json(v); }

// Reads typed fields of one JSON object, naming `source` and the field in every error.
// `prefix` qualifies nested fields ("rope_scaling.").
class Fields {
 public:
  Fields(const json& obj, const std::string& source, std::string prefix = "")
      : obj_(obj), source_(source), prefix_(std::move(prefix)) {}

  // The value of `name`, or nullptr when absent or null (absent and null mean "use the default").
  const json* get(const char* name) const {
    const auto it = obj_.find(name);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }

  [[noreturn]] void type_error(const char* name, const char* expected, const json& found) const {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: field '{}{}': expected {}, found {}", source_, prefix_, name, expected, show(found)));
  }
  [[noreturn]] void missing(const char* name, const char* expected) const {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: missing required field '{}{}' (expected {})", source_, prefix_, name, expected));
  }
  [[noreturn]] void unsupported(const char* name, const std::string& value, const char* supported) const {
    throw Error(ErrorCode::kUnsupported, fmt::format("{}: field '{}{}': unsupported value {} (supported: {})",
                                                     source_, prefix_, name, value, supported));
  }

  std::optional<int64_t> opt_positive_int(const char* name) const {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer() || v->get<int64_t>() <= 0) type_error(name, "a positive integer", *v);
    return v->get<int64_t>();
  }
  int64_t positive_int(const char* name) const {
    const auto v = opt_positive_int(name);
    if (!v) missing(name, "a positive integer");
    return *v;
  }
  std::optional<int64_t> opt_non_negative_int(const char* name) const {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer() || v->get<int64_t>() < 0) type_error(name, "a non-negative integer", *v);
    return v->get<int64_t>();
  }
  std::optional<double> opt_positive_number(const char* name) const {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number() || !(v->get<double>() > 0.0)) type_error(name, "a positive number", *v);
    return v->get<double>();
  }
  double positive_number(const char* name) const {
    const auto v = opt_positive_number(name);
    if (!v) missing(name, "a positive number");
    return *v;
  }
  std::optional<bool> opt_bool(const char* name) const {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) type_error(name, "true or false", *v);
    return v->get<bool>();
  }
  std::optional<std::string> opt_string(const char* name) const {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) type_error(name, "a string", *v);
    return v->get<std::string>();
  }
  // An integer token id or a list of them (eos_token_id).
  std::vector<int64_t> id_list(const char* name) const {
    const json* v = get(name);
    if (v == nullptr) return {};
    const char* expected = "a non-negative integer or a list of them";
    std::vector<int64_t> ids;
    if (v->is_array()) {
      for (const json& e : *v) {
        if (!e.is_number_integer() || e.get<int64_t>() < 0) type_error(name, expected, *v);
        ids.push_back(e.get<int64_t>());
      }
    } else if (v->is_number_integer() && v->get<int64_t>() >= 0) {
      ids.push_back(v->get<int64_t>());
    } else {
      type_error(name, expected, *v);
    }
    return ids;
  }

  const std::string& source() const { return source_; }

 private:
  const json& obj_;
  const std::string& source_;
  std::string prefix_;
};

json parse_json_object(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(ErrorCode::kParse, fmt::format("{}: malformed JSON at byte {}: {}", source, e.byte, e.what()));
  }
  if (!j.is_object()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: expected a JSON object at the top level, found {}", source,
                                               j.type_name()));
  }
  return j;
}

void add_unique(std::vector<int64_t>& ids, const std::vector<int64_t>& more) {
  for (int64_t id : more) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
}

// rope_scaling: null, {"rope_type"|"type": "default"|"linear"|"llama3", ...}. `name` is the
// field holding the object ("rope_scaling", or "rope_parameters" in newer configs).
RopeScaling parse_rope_scaling(const json& obj, const std::string& source, const char* name) {
  RopeScaling rs;
  if (!obj.is_object()) {
    Fields(json::object(), source).type_error(name, "null or an object with a \"rope_type\"", obj);
  }
  const Fields f(obj, source, std::string(name) + ".");
  const char* type_field = f.get("rope_type") != nullptr ? "rope_type" : "type";
  const std::optional<std::string> type = f.opt_string(type_field);
  if (!type || *type == "default") return rs;
  if (*type == "linear") {
    rs.type = RopeScalingType::kLinear;
    rs.factor = static_cast<float>(f.positive_number("factor"));
  } else if (*type == "llama3") {
    rs.type = RopeScalingType::kLlama3;
    rs.factor = static_cast<float>(f.positive_number("factor"));
    rs.low_freq_factor = static_cast<float>(f.positive_number("low_freq_factor"));
    rs.high_freq_factor = static_cast<float>(f.positive_number("high_freq_factor"));
    rs.original_max_position_embeddings = f.positive_int("original_max_position_embeddings");
    if (rs.high_freq_factor <= rs.low_freq_factor) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: field '{}.high_freq_factor' ({}) must be greater than low_freq_factor ({})",
                              source, name, rs.high_freq_factor, rs.low_freq_factor));
    }
  } else {
    f.unsupported(type_field, show(json(*type)), "\"default\", \"linear\", \"llama3\"");
  }
  return rs;
}

std::optional<DType> parse_torch_dtype(const std::string& s) {
  if (s == "float32" || s == "torch.float32") return DType::kF32;
  if (s == "float16" || s == "torch.float16") return DType::kF16;
  if (s == "bfloat16" || s == "torch.bfloat16") return DType::kBF16;
  return std::nullopt;  // informational only: an unknown spelling is not an error
}

}  // namespace

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
  const json j = parse_json_object(json_text, source);
  const Fields f(j, source);
  ModelConfig c;

  const std::optional<std::string> model_type = f.opt_string("model_type");
  if (!model_type) f.missing("model_type", "a string");
  c.model_type = *model_type;
  if (c.model_type == "llama") {
    c.family = ModelFamily::kLlama;
  } else if (c.model_type == "mistral") {
    c.family = ModelFamily::kMistral;
  } else if (c.model_type == "qwen2") {
    c.family = ModelFamily::kQwen2;
  } else {
    f.unsupported("model_type", show(json(c.model_type)), "\"llama\", \"mistral\", \"qwen2\"");
  }

  c.hidden_size = f.positive_int("hidden_size");
  c.intermediate_size = f.positive_int("intermediate_size");
  c.num_hidden_layers = f.positive_int("num_hidden_layers");
  c.num_attention_heads = f.positive_int("num_attention_heads");
  c.num_key_value_heads = f.opt_positive_int("num_key_value_heads").value_or(c.num_attention_heads);
  c.vocab_size = f.positive_int("vocab_size");
  c.max_position_embeddings = f.positive_int("max_position_embeddings");

  if (const auto hd = f.opt_positive_int("head_dim")) {
    c.head_dim = *hd;
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: field 'head_dim' is absent and hidden_size ({}) is not divisible by "
                              "num_attention_heads ({})", source, c.hidden_size, c.num_attention_heads));
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", source,
                            c.num_attention_heads, c.num_key_value_heads));
  }
  if (c.head_dim % 2 != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: field 'head_dim': expected an even number (rotary embeddings rotate pairs), "
                            "found {}", source, c.head_dim));
  }

  c.rms_norm_eps = static_cast<float>(f.opt_positive_number("rms_norm_eps").value_or(1e-6));

  // Rotary embeddings: rope_theta + rope_scaling at the top level, or (newer transformers) both
  // inside "rope_parameters".
  const json* rope_params = f.get("rope_parameters");
  if (rope_params != nullptr && !rope_params->is_object()) f.type_error("rope_parameters", "an object", *rope_params);
  double theta = 10000.0;
  if (const auto t = f.opt_positive_number("rope_theta")) {
    theta = *t;
  } else if (rope_params != nullptr) {
    theta = Fields(*rope_params, source, "rope_parameters.").opt_positive_number("rope_theta").value_or(theta);
  }
  c.rope_theta = static_cast<float>(theta);
  if (const json* rs = f.get("rope_scaling")) {
    c.rope_scaling = parse_rope_scaling(*rs, source, "rope_scaling");
  } else if (rope_params != nullptr) {
    c.rope_scaling = parse_rope_scaling(*rope_params, source, "rope_parameters");
  }

  if (const auto act = f.opt_string("hidden_act"); act && *act != "silu") {
    f.unsupported("hidden_act", show(json(*act)), "\"silu\"");
  }
  if (f.opt_bool("mlp_bias").value_or(false)) {
    f.unsupported("mlp_bias", "true", "false (the MLP projections have no bias)");
  }

  c.tie_word_embeddings = f.opt_bool("tie_word_embeddings").value_or(false);
  c.attention_bias = f.opt_bool("attention_bias").value_or(false);
  if (c.family == ModelFamily::kQwen2) c.attention_bias = true;  // Qwen2 always has q/k/v bias

  if (const json* bos = f.get("bos_token_id")) {
    if (!bos->is_number_integer() || bos->get<int64_t>() < 0) f.type_error("bos_token_id", "a non-negative integer", *bos);
    c.bos_token_id = bos->get<int64_t>();
  }
  c.eos_token_ids = f.id_list("eos_token_id");

  const char* dtype_field = f.get("torch_dtype") != nullptr ? "torch_dtype" : "dtype";
  if (const auto dt = f.opt_string(dtype_field)) c.torch_dtype = parse_torch_dtype(*dt);

  const std::optional<int64_t> window = f.opt_non_negative_int("sliding_window");
  switch (c.family) {
    case ModelFamily::kLlama:
      break;  // LlamaConfig has no sliding window; a stray field is ignored as transformers does
    case ModelFamily::kMistral:
      c.sliding_window = window.value_or(0);
      break;
    case ModelFamily::kQwen2:
      if (f.opt_bool("use_sliding_window").value_or(false)) c.sliding_window = window.value_or(0);
      break;
  }

  return c;
}

ModelConfig load_model_config(const std::filesystem::path& model_dir) {
  const std::filesystem::path path = model_dir / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error(ErrorCode::kNotFound,
                fmt::format("{}: config.json not found (expected a Hugging Face model directory)", path.string()));
  }
  ModelConfig c = parse_model_config(read_text_file(path), path.string());

  const std::filesystem::path gen_path = model_dir / "generation_config.json";
  if (std::filesystem::is_regular_file(gen_path, ec)) {
    const std::string gen_source = gen_path.string();
    const json g = parse_json_object(read_text_file(gen_path), gen_source);
    const Fields gf(g, gen_source);
    add_unique(c.eos_token_ids, gf.id_list("eos_token_id"));
  }
  return c;
}

}  // namespace fdpp
