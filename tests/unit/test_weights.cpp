// WeightStore (single file and sharded), prefetch with progress, and bind_llama_weights against
// the config: the real stories260K checkpoint, synthetic F16/BF16/Qwen2 checkpoints, and every
// mismatch reported by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "fdpp/status.h"
#include "model/config.h"
#include "model/weight_store.h"
#include "model/weights.h"
#include "support/expect_error.h"
#include "support/safetensors_builder.h"
#include "support/test_paths.h"

namespace fdpp {
namespace {

using test::TempDir;
using test::TestTensor;
using test::TinyLlamaSpec;
using test::write_file;
using json = nlohmann::json;

void write_model(const TempDir& dir, const TinyLlamaSpec& spec, const std::vector<TestTensor>& tensors) {
  write_file(dir / "config.json", test::tiny_llama_config(spec));
  write_file(dir / "model.safetensors", test::build_safetensors(tensors));
}

std::vector<TestTensor> without(std::vector<TestTensor> tensors, const std::vector<std::string>& names) {
  std::erase_if(tensors, [&](const TestTensor& t) {
    return std::find(names.begin(), names.end(), t.name) != names.end();
  });
  return tensors;
}

// The element at flat index i of `name` in the raw bytes of a safetensors file, decoded with an
// independent parse of the header.
float raw_f32(const std::string& raw, const std::string& name, size_t i) {
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  const json header = json::parse(raw.substr(8, n));
  const size_t begin = header.at(name).at("data_offsets").at(0).get<size_t>();
  float v;
  std::memcpy(&v, raw.data() + 8 + n + begin + 4 * i, 4);
  return v;
}

float at(const TensorView& v, int64_t r, int64_t c) {
  return load_as_float(v.data, v.dtype, static_cast<size_t>(r * v.stride[0] + c));
}

// ---------------------------------------------------------------- the real checkpoint

TEST(WeightStore, Stories260KLoadsAndBinds) {
  const auto dir = test::stories_model_dir();
  FDPP_REQUIRE_PATH(dir / "model.safetensors");
  const WeightStore store = WeightStore::open(dir);
  EXPECT_EQ(store.size(), 47u);
  const std::vector<std::string> names = store.names();
  EXPECT_EQ(names.size(), 47u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(store.files().size(), 1u);
  const std::string raw = test::read_file(dir / "model.safetensors");
  EXPECT_EQ(store.total_bytes(), raw.size() - store.files()[0].data_offset());

  const ModelConfig config = load_model_config(dir);
  const LlamaWeights w = bind_llama_weights(store, config);
  ASSERT_EQ(w.layers.size(), 5u);
  EXPECT_EQ(w.embed.shape_string(), "[512, 64]");
  EXPECT_EQ(w.lm_head.data, w.embed.data);  // tied: lm_head is the embedding
  EXPECT_EQ(w.final_norm.shape_string(), "[64]");
  for (const LayerWeights& l : w.layers) {
    EXPECT_EQ(l.wq.shape_string(), "[64, 64]");
    EXPECT_EQ(l.wk.shape_string(), "[32, 64]");
    EXPECT_EQ(l.wv.shape_string(), "[32, 64]");
    EXPECT_EQ(l.wo.shape_string(), "[64, 64]");
    EXPECT_EQ(l.w_gate.shape_string(), "[172, 64]");
    EXPECT_EQ(l.w_up.shape_string(), "[172, 64]");
    EXPECT_EQ(l.w_down.shape_string(), "[64, 172]");
    EXPECT_TRUE(l.bq.empty() && l.bk.empty() && l.bv.empty());
  }
  // Spot checks against the file's bytes.
  EXPECT_EQ(at(w.embed, 17, 3), raw_f32(raw, "model.embed_tokens.weight", 17 * 64 + 3));
  EXPECT_EQ(at(w.layers[2].wk, 31, 63), raw_f32(raw, "model.layers.2.self_attn.k_proj.weight", 31 * 64 + 63));
  EXPECT_EQ(at(w.layers[4].w_down, 10, 171), raw_f32(raw, "model.layers.4.mlp.down_proj.weight", 10 * 172 + 171));
  EXPECT_EQ(load_as_float(w.layers[0].input_norm.data, DType::kF32, 7),
            raw_f32(raw, "model.layers.0.input_layernorm.weight", 7));
  EXPECT_EQ(load_as_float(w.final_norm.data, DType::kF32, 63), raw_f32(raw, "model.norm.weight", 63));
  EXPECT_EQ(&store.get("model.norm.weight"), store.find("model.norm.weight"));
}

TEST(WeightStore, PrefetchReportsProgress) {
  const auto dir = test::stories_model_dir();
  FDPP_REQUIRE_PATH(dir / "model.safetensors");
  const WeightStore store = WeightStore::open(dir);
  std::vector<std::pair<size_t, size_t>> calls;
  store.prefetch([&](size_t done, size_t total) { calls.emplace_back(done, total); });
  ASSERT_GE(calls.size(), 2u);
  EXPECT_EQ(calls.front(), std::make_pair(size_t{0}, store.total_bytes()));
  EXPECT_EQ(calls.back(), std::make_pair(store.total_bytes(), store.total_bytes()));
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_LE(calls[i - 1].first, calls[i].first);
  store.prefetch();  // no callback is fine
}

TEST(WeightStore, GetMissingTensorNamesTensorAndDir) {
  TempDir dir;
  const TinyLlamaSpec spec;
  write_model(dir, spec, test::tiny_llama_tensors(spec));
  const WeightStore store = WeightStore::open(dir.path());
  EXPECT_EQ(store.find("model.layers.9.mlp.up_proj.weight"), nullptr);
  EXPECT_FDPP_ERROR(store.get("model.layers.9.mlp.up_proj.weight"), ErrorCode::kNotFound,
                    {"'model.layers.9.mlp.up_proj.weight'", dir.path().string()});
}

TEST(WeightStore, NoCheckpointInDir) {
  TempDir dir;
  EXPECT_FDPP_ERROR(WeightStore::open(dir.path()), ErrorCode::kNotFound,
                    {dir.path().string(), "model.safetensors", "model.safetensors.index.json"});
  EXPECT_FDPP_ERROR(WeightStore::open(dir / "absent"), ErrorCode::kNotFound, {(dir / "absent").string()});
}

TEST(WeightStore, MoveKeepsViewsValid) {
  TempDir dir;
  const TinyLlamaSpec spec;
  write_model(dir, spec, test::tiny_llama_tensors(spec));
  WeightStore a = WeightStore::open(dir.path());
  const void* p = a.get("model.norm.weight").data;
  WeightStore b = std::move(a);
  EXPECT_EQ(b.get("model.norm.weight").data, p);
  EXPECT_EQ(load_as_float(p, DType::kF32, 0), load_as_float(b.get("model.norm.weight").data, DType::kF32, 0));
}

// ---------------------------------------------------------------- sharded checkpoints

// Splits the tiny checkpoint into two shards and an index.
struct ShardedModel {
  TinyLlamaSpec spec;
  std::vector<TestTensor> tensors = test::tiny_llama_tensors(spec);
  json index;

  void write(const TempDir& dir) {
    const size_t half = tensors.size() / 2;
    const std::vector<TestTensor> a(tensors.begin(), tensors.begin() + static_cast<long>(half));
    const std::vector<TestTensor> b(tensors.begin() + static_cast<long>(half), tensors.end());
    write_file(dir / "config.json", test::tiny_llama_config(spec));
    write_file(dir / "model-00001-of-00002.safetensors", test::build_safetensors(a));
    write_file(dir / "model-00002-of-00002.safetensors", test::build_safetensors(b));
    if (index.is_null()) {
      index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
      for (const TestTensor& t : a) index["weight_map"][t.name] = "model-00001-of-00002.safetensors";
      for (const TestTensor& t : b) index["weight_map"][t.name] = "model-00002-of-00002.safetensors";
    }
    write_file(dir / "model.safetensors.index.json", index.dump(2));
  }
};

TEST(WeightStore, ShardedTwoFiles) {
  TempDir dir;
  ShardedModel m;
  m.write(dir);
  const WeightStore store = WeightStore::open(dir.path());
  EXPECT_EQ(store.files().size(), 2u);
  EXPECT_EQ(store.size(), m.tensors.size());
  size_t data_bytes = 0;
  for (const TestTensor& t : m.tensors) data_bytes += t.bytes.size();
  EXPECT_EQ(store.total_bytes(), data_bytes);
  for (const TestTensor& t : m.tensors) {
    const TensorView& v = store.get(t.name);
    ASSERT_EQ(v.nbytes(), t.bytes.size()) << t.name;
    EXPECT_EQ(std::memcmp(v.data, t.bytes.data(), t.bytes.size()), 0) << t.name;
  }
  const LlamaWeights w = bind_llama_weights(store, load_model_config(dir.path()));
  EXPECT_EQ(w.layers.size(), 2u);
  EXPECT_EQ(w.lm_head.shape_string(), "[32, 16]");
  EXPECT_NE(w.lm_head.data, w.embed.data);
}

TEST(WeightStore, ShardedIndexNamesMissingShard) {
  TempDir dir;
  ShardedModel m;
  m.write(dir);
  m.index["weight_map"]["model.norm.weight"] = "model-00003-of-00002.safetensors";
  write_file(dir / "model.safetensors.index.json", m.index.dump());
  EXPECT_FDPP_ERROR(WeightStore::open(dir.path()), ErrorCode::kNotFound,
                    {"model.safetensors.index.json", "shard 'model-00003-of-00002.safetensors'", "does not exist"});
}

TEST(WeightStore, ShardedTensorNotInNamedShard) {
  TempDir dir;
  ShardedModel m;
  m.write(dir);
  // model.norm.weight lives in the second shard; the index claims the first.
  m.index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
  write_file(dir / "model.safetensors.index.json", m.index.dump());
  EXPECT_FDPP_ERROR(WeightStore::open(dir.path()), ErrorCode::kNotFound,
                    {"model.safetensors.index.json", "tensor 'model.norm.weight'",
                     "shard 'model-00001-of-00002.safetensors'", "no such tensor"});
}

TEST(WeightStore, ShardedMalformedIndex) {
  TempDir dir;
  ShardedModel m;
  m.write(dir);
  write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"a": )");
  EXPECT_FDPP_ERROR(WeightStore::open(dir.path()), ErrorCode::kParse, {"model.safetensors.index.json", "byte"});
  write_file(dir / "model.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_FDPP_ERROR(WeightStore::open(dir.path()), ErrorCode::kParse,
                    {"model.safetensors.index.json", "missing field 'weight_map'"});
  write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"model.norm.weight": "../elsewhere.safetensors"}})");
  EXPECT_FDPP_ERROR(WeightStore::open(dir.path()), ErrorCode::kParse,
                    {"model.safetensors.index.json", "weight_map['model.norm.weight']", "../elsewhere.safetensors"});
  write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"model.norm.weight": 3}})");
  EXPECT_FDPP_ERROR(WeightStore::open(dir.path()), ErrorCode::kParse, {"weight_map['model.norm.weight']", "found 3"});
}

// ---------------------------------------------------------------- binding

TEST(WeightBind, F16AndBf16Checkpoints) {
  for (const char* dtype : {"F16", "BF16"}) {
    TempDir dir;
    TinyLlamaSpec spec;
    spec.dtype = dtype;
    const std::vector<TestTensor> tensors = test::tiny_llama_tensors(spec);
    write_model(dir, spec, tensors);
    const WeightStore store = WeightStore::open(dir.path());
    const LlamaWeights w = bind_llama_weights(store, load_model_config(dir.path()));
    const DType expected = std::string(dtype) == "F16" ? DType::kF16 : DType::kBF16;
    EXPECT_EQ(w.embed.dtype, expected);
    EXPECT_EQ(w.layers[1].w_up.dtype, expected);
    // Values decode to the rounded ramp the builder wrote: layer 1 up_proj element [5, 7].
    const auto it = std::find_if(tensors.begin(), tensors.end(),
                                 [](const TestTensor& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
    ASSERT_NE(it, tensors.end());
    uint16_t bits;
    std::memcpy(&bits, it->bytes.data() + 2 * (5 * 16 + 7), 2);
    EXPECT_EQ(at(w.layers[1].w_up, 5, 7), expected == DType::kF16 ? half_to_float(bits) : bf16_to_float(bits));
    EXPECT_NEAR(at(w.layers[1].w_up, 5, 7), 0.001f * (5 * 16 + 7) + 0.5f * 17, 0.05f);  // up_proj of layer 1 is tensor 17
  }
}

TEST(WeightBind, Qwen2Bias) {
  TempDir dir;
  TinyLlamaSpec spec;
  spec.model_type = "qwen2";
  spec.tied = true;
  write_model(dir, spec, test::tiny_llama_tensors(spec));
  const WeightStore store = WeightStore::open(dir.path());
  const ModelConfig config = load_model_config(dir.path());
  ASSERT_TRUE(config.attention_bias);
  const LlamaWeights w = bind_llama_weights(store, config);
  EXPECT_EQ(w.layers[0].bq.shape_string(), "[16]");
  EXPECT_EQ(w.layers[0].bk.shape_string(), "[8]");
  EXPECT_EQ(w.layers[1].bv.shape_string(), "[8]");
  EXPECT_EQ(w.lm_head.data, w.embed.data);

  // The same checkpoint without its biases is reported.
  write_file(dir / "model.safetensors",
             test::build_safetensors(without(test::tiny_llama_tensors(spec),
                                             {"model.layers.0.self_attn.q_proj.bias",
                                              "model.layers.1.self_attn.v_proj.bias"})));
  const WeightStore store2 = WeightStore::open(dir.path());
  EXPECT_FDPP_ERROR(bind_llama_weights(store2, config), ErrorCode::kNotFound,
                    {"2 missing tensors", "'model.layers.0.self_attn.q_proj.bias'",
                     "'model.layers.1.self_attn.v_proj.bias'"});
}

TEST(WeightBind, TiedButLmHeadPresentUsesIt) {
  TempDir dir;
  TinyLlamaSpec spec;
  spec.tied = false;
  std::vector<TestTensor> tensors = test::tiny_llama_tensors(spec);  // has lm_head.weight
  spec.tied = true;
  write_model(dir, spec, tensors);
  const WeightStore store = WeightStore::open(dir.path());
  const LlamaWeights w = bind_llama_weights(store, load_model_config(dir.path()));
  EXPECT_EQ(w.lm_head.data, store.get("lm_head.weight").data);
  EXPECT_NE(w.lm_head.data, w.embed.data);
}

TEST(WeightBind, ShapeMismatchVsConfig) {
  TempDir dir;
  TinyLlamaSpec file_spec;  // k/v projections for 8 KV heads...
  file_spec.hidden = 64;
  file_spec.heads = 8;
  file_spec.kv_heads = 8;
  file_spec.layers = 1;
  TinyLlamaSpec config_spec = file_spec;  // ...but the config says 4
  config_spec.kv_heads = 4;
  write_model(dir, config_spec, test::tiny_llama_tensors(file_spec));
  const WeightStore store = WeightStore::open(dir.path());
  EXPECT_FDPP_ERROR(bind_llama_weights(store, load_model_config(dir.path())), ErrorCode::kInvalidArgument,
                    {dir.path().string(),
                     "tensor 'model.layers.0.self_attn.k_proj.weight': expected shape [32, 64], found [64, 64]",
                     "tensor 'model.layers.0.self_attn.v_proj.weight': expected shape [32, 64], found [64, 64]"});
}

TEST(WeightBind, MissingTensors) {
  TempDir dir;
  const TinyLlamaSpec spec;
  write_model(dir, spec,
              without(test::tiny_llama_tensors(spec), {"model.norm.weight", "model.layers.1.mlp.gate_proj.weight",
                                                       "lm_head.weight"}));
  const WeightStore store = WeightStore::open(dir.path());
  EXPECT_FDPP_ERROR(bind_llama_weights(store, load_model_config(dir.path())), ErrorCode::kNotFound,
                    {"3 missing tensors", "'model.norm.weight'", "'model.layers.1.mlp.gate_proj.weight'",
                     "'lm_head.weight'"});
}

TEST(WeightBind, ManyMissingTensorsAreCountedAndListedInPart) {
  TempDir dir;
  const TinyLlamaSpec file_spec;  // 2 layers in the file...
  TinyLlamaSpec config_spec = file_spec;
  config_spec.layers = 4;  // ...4 in the config: 2 x 9 = 18 missing
  write_model(dir, config_spec, test::tiny_llama_tensors(file_spec));
  const WeightStore store = WeightStore::open(dir.path());
  EXPECT_FDPP_ERROR(bind_llama_weights(store, load_model_config(dir.path())), ErrorCode::kNotFound,
                    {"18 missing tensors", "'model.layers.2.input_layernorm.weight'", ", ... and 8 more"});
}

TEST(WeightBind, UnexpectedTensors) {
  TempDir dir;
  const TinyLlamaSpec spec;
  std::vector<TestTensor> tensors = test::tiny_llama_tensors(spec);
  tensors.push_back(test::f32_tensor("model.layers.0.mlp.extra_proj.weight", {4}, test::ramp({4})));
  tensors.push_back(test::f32_tensor("model.layers.0.self_attn.rotary_emb.inv_freq", {2}, test::ramp({2})));
  tensors.push_back(test::f32_tensor("model.layers.5.input_layernorm.weight", {16}, test::ramp({16})));
  write_model(dir, spec, tensors);
  const WeightStore store = WeightStore::open(dir.path());
  try {
    bind_llama_weights(store, load_model_config(dir.path()));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << msg;
    EXPECT_NE(msg.find("2 unexpected tensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'model.layers.0.mlp.extra_proj.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'model.layers.5.input_layernorm.weight'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("inv_freq"), std::string::npos) << msg;  // tolerated
  }
  // Attention biases in a checkpoint whose config has none are unexpected too.
  TinyLlamaSpec biased = spec;
  biased.attention_bias = true;
  write_model(dir, spec, test::tiny_llama_tensors(biased));
  const WeightStore store2 = WeightStore::open(dir.path());
  EXPECT_FDPP_ERROR(bind_llama_weights(store2, load_model_config(dir.path())), ErrorCode::kInvalidArgument,
                    {"6 unexpected tensors", "'model.layers.0.self_attn.k_proj.bias'"});
}

TEST(WeightBind, EveryProblemInOneError) {
  TempDir dir;
  const TinyLlamaSpec spec;
  std::vector<TestTensor> tensors = without(test::tiny_llama_tensors(spec), {"model.layers.0.mlp.up_proj.weight"});
  tensors.push_back(test::f32_tensor("model.extra.weight", {1}, {1.0f}));
  for (TestTensor& t : tensors) {
    if (t.name == "model.norm.weight") t = test::f32_tensor(t.name, {8}, test::ramp({8}));
  }
  write_model(dir, spec, tensors);
  const WeightStore store = WeightStore::open(dir.path());
  EXPECT_FDPP_ERROR(bind_llama_weights(store, load_model_config(dir.path())), ErrorCode::kNotFound,
                    {"1 missing tensor:", "'model.layers.0.mlp.up_proj.weight'", "1 unexpected tensor:",
                     "'model.extra.weight'", "tensor 'model.norm.weight': expected shape [16], found [8]"});
}

// ---------------------------------------------------------------- progress display

TEST(WeightProgressBar, PlainLinesAtQuarters) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressBar bar("loading weights", 4000000, "B", f, /*is_tty=*/false);
    for (size_t done = 0; done <= 4000000; done += 100000) bar.update(done);
    bar.finish();
    bar.finish();  // idempotent
  }
  std::rewind(f);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f) != nullptr) out += buf;
  std::fclose(f);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 5) << out;
  for (const char* pct : {"  0%", " 25%", " 50%", " 75%", "100%"}) {
    EXPECT_NE(out.find(std::string("loading weights: ") + pct), std::string::npos) << out;
  }
  EXPECT_NE(out.find("4.0/4.0 MB"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
}

TEST(WeightProgressBar, TtyRedrawsOneLine) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressBar bar("tensors", 48, "tensors", f, /*is_tty=*/true);
    for (size_t i = 0; i <= 48; ++i) bar.update(i);  // fast: throttled to the first draw
  }  // destructor finishes
  std::rewind(f);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f) != nullptr) out += buf;
  std::fclose(f);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_GE(std::count(out.begin(), out.end(), '\r'), 2) << out;
  EXPECT_LE(std::count(out.begin(), out.end(), '\r'), 4) << out;  // not one per update
  EXPECT_NE(out.find("100%  48/48 tensors"), std::string::npos) << out;
}

TEST(WeightProgressBar, DrivenByPrefetch) {
  TempDir dir;
  const TinyLlamaSpec spec;
  write_model(dir, spec, test::tiny_llama_tensors(spec));
  const WeightStore store = WeightStore::open(dir.path());
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressBar bar("prefetch", store.total_bytes(), "B", f, false);
    store.prefetch([&](size_t done, size_t) { bar.update(done); });
    bar.finish();
  }
  std::rewind(f);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f) != nullptr) out += buf;
  std::fclose(f);
  EXPECT_NE(out.find("prefetch:   0%"), std::string::npos) << out;
  EXPECT_NE(out.find("prefetch: 100%"), std::string::npos) << out;
}

}  // namespace
}  // namespace fdpp
