// Builds synthetic .safetensors files (and Llama checkpoints) for loader tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace fdpp::test {

struct TestTensor {
  std::string name;
  std::string dtype;            // safetensors spelling: "F32", "F16", "BF16", "F64", ...
  std::vector<int64_t> shape;
  std::string bytes;            // raw little-endian data
};

// Values encoded as F32, F16 or BF16 (round to nearest even), dtype set accordingly.
TestTensor f32_tensor(std::string name, std::vector<int64_t> shape, const std::vector<float>& values);
TestTensor f16_tensor(std::string name, std::vector<int64_t> shape, const std::vector<float>& values);
TestTensor bf16_tensor(std::string name, std::vector<int64_t> shape, const std::vector<float>& values);
// numel(shape) values: i * scale + offset.
std::vector<float> ramp(const std::vector<int64_t>& shape, float scale = 0.01f, float offset = 0.0f);

// A whole file: tensors laid out back to back in order, header padded with spaces to a multiple
// of `header_align` bytes (1 = no padding), with a __metadata__ entry.
std::string build_safetensors(const std::vector<TestTensor>& tensors, size_t header_align = 8);
// Raw pieces: 8-byte little-endian header length, then the header text, then the data.
std::string raw_safetensors(const std::string& header_json, const std::string& data);
std::string raw_safetensors(uint64_t declared_header_len, const std::string& header_json, const std::string& data);

// A Llama-family config.json text, and the tensors a checkpoint for it holds (F32 ramps).
struct TinyLlamaSpec {
  std::string model_type = "llama";
  int64_t hidden = 16, intermediate = 24, layers = 2, heads = 4, kv_heads = 2, vocab = 32;
  bool tied = false;
  bool attention_bias = false;
  std::string dtype = "F32";  // F32, F16 or BF16
};
std::string tiny_llama_config(const TinyLlamaSpec& spec);
std::vector<TestTensor> tiny_llama_tensors(const TinyLlamaSpec& spec);

}  // namespace fdpp::test
