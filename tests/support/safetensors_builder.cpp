#include "support/safetensors_builder.h"

#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/dtype.h"

namespace fdpp::test {

namespace {

size_t numel_of(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

template <typename T>
void append(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

std::string u64_le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

}  // namespace

TestTensor f32_tensor(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
  TestTensor t{std::move(name), "F32", std::move(shape), {}};
  for (float v : values) append(t.bytes, v);
  return t;
}

TestTensor f16_tensor(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
  TestTensor t{std::move(name), "F16", std::move(shape), {}};
  for (float v : values) append(t.bytes, float_to_half(v));
  return t;
}

TestTensor bf16_tensor(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
  TestTensor t{std::move(name), "BF16", std::move(shape), {}};
  for (float v : values) append(t.bytes, float_to_bf16(v));
  return t;
}

std::vector<float> ramp(const std::vector<int64_t>& shape, float scale, float offset) {
  std::vector<float> v(numel_of(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * scale + offset;
  return v;
}

std::string build_safetensors(const std::vector<TestTensor>& tensors, size_t header_align) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const TestTensor& t : tensors) {
    const size_t begin = data.size();
    data += t.bytes;
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  std::string text = header.dump();
  if (header_align > 1) {
    while ((8 + text.size()) % header_align != 0) text += ' ';
  }
  return raw_safetensors(text, data);
}

std::string raw_safetensors(const std::string& header_json, const std::string& data) {
  return raw_safetensors(header_json.size(), header_json, data);
}

std::string raw_safetensors(uint64_t declared_header_len, const std::string& header_json, const std::string& data) {
  return u64_le(declared_header_len) + header_json + data;
}

std::string tiny_llama_config(const TinyLlamaSpec& s) {
  nlohmann::ordered_json c = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", s.model_type},
      {"hidden_size", s.hidden},
      {"intermediate_size", s.intermediate},
      {"num_hidden_layers", s.layers},
      {"num_attention_heads", s.heads},
      {"num_key_value_heads", s.kv_heads},
      {"vocab_size", s.vocab},
      {"max_position_embeddings", 128},
      {"rms_norm_eps", 1e-5},
      {"hidden_act", "silu"},
      {"tie_word_embeddings", s.tied},
      {"attention_bias", s.attention_bias},
      {"bos_token_id", 1},
      {"eos_token_id", 2},
  };
  return c.dump(2);
}

std::vector<TestTensor> tiny_llama_tensors(const TinyLlamaSpec& s) {
  const int64_t D = s.hidden, F = s.intermediate, V = s.vocab;
  const int64_t hd = s.hidden / s.heads;
  const int64_t q = s.heads * hd, kv = s.kv_heads * hd;
  std::vector<TestTensor> out;
  float offset = 0.0f;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    const std::vector<float> v = ramp(shape, 0.001f, offset);
    offset += 0.5f;
    if (s.dtype == "F16") {
      out.push_back(f16_tensor(name, shape, v));
    } else if (s.dtype == "BF16") {
      out.push_back(bf16_tensor(name, shape, v));
    } else {
      out.push_back(f32_tensor(name, shape, v));
    }
  };
  add("model.embed_tokens.weight", {V, D});
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    add(p + "input_layernorm.weight", {D});
    add(p + "self_attn.q_proj.weight", {q, D});
    add(p + "self_attn.k_proj.weight", {kv, D});
    add(p + "self_attn.v_proj.weight", {kv, D});
    if (s.attention_bias || s.model_type == "qwen2") {
      add(p + "self_attn.q_proj.bias", {q});
      add(p + "self_attn.k_proj.bias", {kv});
      add(p + "self_attn.v_proj.bias", {kv});
    }
    add(p + "self_attn.o_proj.weight", {D, q});
    add(p + "post_attention_layernorm.weight", {D});
    add(p + "mlp.gate_proj.weight", {F, D});
    add(p + "mlp.up_proj.weight", {F, D});
    add(p + "mlp.down_proj.weight", {D, F});
  }
  add("model.norm.weight", {D});
  if (!s.tied) add("lm_head.weight", {V, D});
  return out;
}

}  // namespace fdpp::test
