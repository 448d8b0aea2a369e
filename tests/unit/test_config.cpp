// config.json parsing: the real stories260K config, Llama-3 / Qwen2 / Mistral shaped configs, and
// every malformed input with a check that the message names the file, field and value.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fdpp/status.h"
#include "model/config.h"
#include "support/expect_error.h"
#include "support/test_paths.h"

namespace fdpp {
namespace {

using test::TempDir;
using test::write_file;
using json = nlohmann::json;

// The parts of a Llama-3-8B-Instruct (3.1) config.json that matter, as published.
constexpr const char* kLlama3Config = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

// Qwen2-0.5B-Instruct shaped.
constexpr const char* kQwen2Config = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "max_window_layers": 24,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// Mistral-7B-v0.1 shaped.
constexpr const char* kMistralConfig = R"({
  "architectures": ["MistralForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "vocab_size": 32000
})";

// A minimal valid llama config as a JSON object, for tests that change one field.
json minimal_config() {
  return json{{"model_type", "llama"},       {"hidden_size", 64},       {"intermediate_size", 128},
              {"num_hidden_layers", 2},      {"num_attention_heads", 4}, {"vocab_size", 100},
              {"max_position_embeddings", 256}};
}

ModelConfig parse(const json& j) { return parse_model_config(j.dump(), "config.json"); }

TEST(Config, Stories260K) {
  const auto dir = test::stories_model_dir();
  FDPP_REQUIRE_PATH(dir / "config.json");
  const ModelConfig c = load_model_config(dir);
  EXPECT_EQ(c.family, ModelFamily::kLlama);
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.torch_dtype, DType::kF32);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.context_limit(), 512);
}

TEST(Config, Llama3RopeScalingAndEosList) {
  const ModelConfig c = parse_model_config(kLlama3Config, "config.json");
  EXPECT_EQ(c.family, ModelFamily::kLlama);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.torch_dtype, DType::kBF16);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.context_limit(), 131072);
}

TEST(Config, LinearRopeScalingUnderTypeKey) {
  json j = minimal_config();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 2.0f);
}

TEST(Config, DefaultRopeTypeMeansNoScaling) {
  json j = minimal_config();
  j["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_EQ(parse(j).rope_scaling.type, RopeScalingType::kNone);
  j["rope_scaling"] = nullptr;
  EXPECT_EQ(parse(j).rope_scaling.type, RopeScalingType::kNone);
}

TEST(Config, RopeParametersOfNewerTransformers) {
  json j = minimal_config();
  j["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 4.0}, {"rope_theta", 50000.0}};
  const ModelConfig c = parse(j);
  EXPECT_FLOAT_EQ(c.rope_theta, 50000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 4.0f);
}

TEST(Config, Qwen2HasQkvBiasAndNoWindowWhenDisabled) {
  const ModelConfig c = parse_model_config(kQwen2Config, "config.json");
  EXPECT_EQ(c.family, ModelFamily::kQwen2);
  EXPECT_TRUE(c.attention_bias);  // implied by qwen2, not written in the file
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.sliding_window, 0);  // use_sliding_window: false
  EXPECT_EQ(c.context_limit(), 32768);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151645});
}

TEST(Config, Qwen2WindowWhenEnabled) {
  json j = json::parse(kQwen2Config);
  j["use_sliding_window"] = true;
  j["sliding_window"] = 4096;
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.context_limit(), 4096);
}

TEST(Config, MistralSlidingWindow) {
  const ModelConfig c = parse_model_config(kMistralConfig, "config.json");
  EXPECT_EQ(c.family, ModelFamily::kMistral);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_EQ(c.context_limit(), 4096);
  EXPECT_FALSE(c.attention_bias);

  json j = json::parse(kMistralConfig);
  j["sliding_window"] = nullptr;  // Mistral v0.2+: no window
  EXPECT_EQ(parse(j).sliding_window, 0);
}

TEST(Config, Defaults) {
  json j = minimal_config();
  j["head_dim"] = nullptr;  // null means "derive it"
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_FALSE(c.torch_dtype.has_value());
}

TEST(Config, ExplicitHeadDimAndDtypeKey) {
  json j = minimal_config();
  j["head_dim"] = 32;  // Hq * hd != D is allowed
  j["dtype"] = "float16";
  j["attention_bias"] = true;
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.torch_dtype, DType::kF16);
  EXPECT_TRUE(c.attention_bias);
}

TEST(Config, GenerationConfigEosMerged) {
  TempDir dir;
  json j = minimal_config();
  j["eos_token_id"] = 2;
  write_file(dir / "config.json", j.dump());
  write_file(dir / "generation_config.json", R"({"bos_token_id": 1, "eos_token_id": [2, 7, 9]})");
  EXPECT_EQ(load_model_config(dir.path()).eos_token_ids, (std::vector<int64_t>{2, 7, 9}));
  write_file(dir / "generation_config.json", R"({"eos_token_id": 5})");
  EXPECT_EQ(load_model_config(dir.path()).eos_token_ids, (std::vector<int64_t>{2, 5}));
}

TEST(Config, GenerationConfigErrorsNameThatFile) {
  TempDir dir;
  write_file(dir / "config.json", minimal_config().dump());
  write_file(dir / "generation_config.json", R"({"eos_token_id": "two"})");
  EXPECT_FDPP_ERROR(load_model_config(dir.path()), ErrorCode::kInvalidArgument,
                    {"generation_config.json", "'eos_token_id'", "\"two\""});
  write_file(dir / "generation_config.json", R"({"eos_token_id": )");
  EXPECT_FDPP_ERROR(load_model_config(dir.path()), ErrorCode::kParse, {"generation_config.json", "byte"});
}

TEST(Config, MissingFile) {
  TempDir dir;
  const std::string expected_path = (dir / "config.json").string();
  EXPECT_FDPP_ERROR(load_model_config(dir.path()), ErrorCode::kNotFound, {expected_path, "not found"});
}

TEST(Config, MalformedJson) {
  TempDir dir;
  write_file(dir / "config.json", "{\"model_type\": \"llama\", \"hidden_size\": 64,,}");
  EXPECT_FDPP_ERROR(load_model_config(dir.path()), ErrorCode::kParse,
                    {(dir / "config.json").string(), "malformed JSON at byte 43"});
  EXPECT_FDPP_ERROR(parse_model_config("[1, 2]", "config.json"), ErrorCode::kParse,
                    {"config.json", "JSON object", "array"});
}

TEST(Config, UnsupportedModelType) {
  json j = minimal_config();
  j["model_type"] = "gpt2";
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kUnsupported,
                    {"config.json: field 'model_type'", "\"gpt2\"", "llama", "mistral", "qwen2"});
  j.erase("model_type");
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument, {"missing required field 'model_type'"});
}

TEST(Config, UnsupportedHiddenAct) {
  json j = minimal_config();
  j["hidden_act"] = "gelu";
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kUnsupported, {"config.json: field 'hidden_act'", "\"gelu\"", "silu"});
}

TEST(Config, UnsupportedMlpBias) {
  json j = minimal_config();
  j["mlp_bias"] = true;
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kUnsupported, {"field 'mlp_bias'"});
}

TEST(Config, WrongFieldType) {
  json j = minimal_config();
  j["hidden_size"] = "abc";
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument,
                    {"config.json: field 'hidden_size': expected a positive integer, found \"abc\""});
  j = minimal_config();
  j["rms_norm_eps"] = "small";
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument,
                    {"field 'rms_norm_eps': expected a positive number, found \"small\""});
  j = minimal_config();
  j["tie_word_embeddings"] = "yes";
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument,
                    {"field 'tie_word_embeddings': expected true or false, found \"yes\""});
  j = minimal_config();
  j["eos_token_id"] = json::array({2, "x"});
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument, {"field 'eos_token_id'", "[2,\"x\"]"});
  j = minimal_config();
  j["num_hidden_layers"] = 2.5;
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument,
                    {"field 'num_hidden_layers': expected a positive integer, found 2.5"});
  j = minimal_config();
  j["sliding_window"] = "big";
  j["model_type"] = "mistral";
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument, {"field 'sliding_window'", "\"big\""});
}

TEST(Config, MissingRequiredField) {
  json j = minimal_config();
  j.erase("vocab_size");
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument,
                    {"config.json: missing required field 'vocab_size'", "positive integer"});
}

TEST(Config, NonPositiveSizes) {
  json j = minimal_config();
  j["intermediate_size"] = 0;
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument,
                    {"field 'intermediate_size': expected a positive integer, found 0"});
  j = minimal_config();
  j["num_key_value_heads"] = -2;
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument, {"field 'num_key_value_heads'", "found -2"});
}

TEST(Config, HeadsNotMultipleOfKvHeads) {
  json j = minimal_config();
  j["num_key_value_heads"] = 3;
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument,
                    {"num_attention_heads (4) must be a multiple of num_key_value_heads (3)"});
}

TEST(Config, HeadDimOddOrUnderivable) {
  json j = minimal_config();
  j["head_dim"] = 15;
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument, {"field 'head_dim'", "even", "found 15"});
  j = minimal_config();
  j["hidden_size"] = 66;  // 66 / 4 heads
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument, {"hidden_size (66)", "num_attention_heads (4)"});
}

TEST(Config, UnsupportedRopeScaling) {
  json j = minimal_config();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kUnsupported,
                    {"config.json: field 'rope_scaling.rope_type'", "\"yarn\"", "llama3"});
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kUnsupported, {"field 'rope_scaling.type'", "\"dynamic\""});
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument,
                    {"missing required field 'rope_scaling.low_freq_factor'"});
  j["rope_scaling"] = "linear";
  EXPECT_FDPP_ERROR(parse(j), ErrorCode::kInvalidArgument, {"field 'rope_scaling'", "\"linear\""});
}

}  // namespace
}  // namespace fdpp
