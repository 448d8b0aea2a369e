// The whole model on the GPU: stories260K-hf logits against the CPU backend, and the same
// greedy text as Hugging Face.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "fdpp/engine.h"
#include "gpu/gpu_test_util.h"
#include "model/config.h"
#include "model/llama_model.h"
#include "model/weight_store.h"
#include "model/weights.h"
#include "runtime/model_bench.h"
#include "tokenizer/tokenizer.h"

namespace fdpp {
namespace {

std::filesystem::path model_dir() { return std::filesystem::path(FDPP_SHARED_DIR) / "models" / "stories260K-hf"; }
std::filesystem::path golden_path() {
  return std::filesystem::path(FDPP_TEST_DATA_DIR) / "model" / "golden" / "stories260k_once_upon_a_time.json";
}

std::vector<float> prefill_logits(Backend& backend, const std::vector<int32_t>& prompt) {
  const ModelConfig config = load_model_config(model_dir());
  const WeightStore store = WeightStore::open(model_dir());
  LlamaModel model(config, bind_llama_weights(store, config), backend);
  backend.init_kv_cache({config.num_hidden_layers, 8, 16, config.num_key_value_heads, config.head_dim});
  StepBatch b;
  b.tokens = prompt;
  for (size_t i = 0; i < prompt.size(); ++i) {
    b.positions.push_back(static_cast<int32_t>(i));
    b.token_seq.push_back(0);
    b.logit_rows.push_back(static_cast<int32_t>(i));  // every row: all positions are compared
  }
  b.block_tables = {5, 2, 7, 0};
  b.max_blocks_per_seq = 4;
  std::vector<float> logits;
  model.forward(b, logits);
  return logits;
}

nlohmann::json read_golden() {
  std::ifstream f(golden_path());
  return nlohmann::json::parse(f);
}

// stories260K-hf on the CUDA backend through the engine, as `fdpp generate` runs it.
std::unique_ptr<Engine> cuda_engine() {
  EngineOptions options;
  options.model_dir = model_dir();
  options.backend = "cuda";
  options.show_progress = false;
  options.max_batch_size = 4;
  return Engine::create(options);
}

TEST(GpuModel, StoriesLogitsMatchCpuBackend) {
  FDPP_REQUIRE_GPU();
  if (!std::filesystem::exists(model_dir())) GTEST_SKIP() << "missing " << model_dir();
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317,
                                       426, 338, 401, 396, 267, 337};
  CpuBackend cpu;
  const auto want = prefill_logits(cpu, prompt);
  for (DType dt : {DType::kF16, DType::kBF16}) {
    cuda::CudaBackend gpu(0, dt);
    const auto got = prefill_logits(gpu, prompt);
    ASSERT_EQ(got.size(), want.size());
    std::vector<double> want_d(want.begin(), want.end());
    const double err = test::scaled_max_error(got, want_d);
    EXPECT_LT(err, dt == DType::kF16 ? 1e-2 : 4e-2) << dtype_name(dt);
    // Top-1 agrees at every position.
    const size_t V = 512;
    for (size_t r = 0; r < prompt.size(); ++r) {
      const auto top = [&](const std::vector<float>& l) {
        return std::max_element(l.begin() + r * V, l.begin() + (r + 1) * V) - (l.begin() + r * V);
      };
      EXPECT_EQ(top(got), top(want)) << "row " << r << " " << dtype_name(dt);
    }
  }
}

TEST(GpuModel, StoriesGreedyTextMatchesHuggingFace) {
  FDPP_REQUIRE_GPU();
  if (!std::filesystem::exists(model_dir())) GTEST_SKIP() << "missing " << model_dir();
  const auto golden = read_golden();
  auto engine = cuda_engine();
  EXPECT_NE(engine->backend_name().find("cuda"), std::string::npos);
  GenerationRequest r;
  r.prompt = golden["prompt_ids"].get<std::vector<int32_t>>();
  r.sampling.temperature = 0;
  r.stop.max_tokens = 60;
  const GenerationResult res = engine->generate(r);
  EXPECT_EQ(res.tokens, golden["greedy_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(res.text, golden["text"].get<std::string>());
}

// Requests the GPU sampler serves (no min-p, no repetition penalty) draw their tokens on the device:
// top-k 1 is greedy, and a seeded request repeats itself.
TEST(GpuModel, EngineSamplesOnTheGpu) {
  FDPP_REQUIRE_GPU();
  if (!std::filesystem::exists(model_dir())) GTEST_SKIP() << "missing " << model_dir();
  const auto golden = read_golden();
  auto engine = cuda_engine();
  GenerationRequest r;
  r.prompt = golden["prompt_ids"].get<std::vector<int32_t>>();
  r.sampling.temperature = 0.8f;
  r.sampling.top_k = 1;
  r.sampling.top_p = 1.0f;
  r.sampling.min_p = 0.0f;
  r.stop.max_tokens = 60;
  EXPECT_EQ(engine->generate(r).tokens, golden["greedy_ids"].get<std::vector<int32_t>>());

  r.sampling.top_k = 40;
  r.sampling.top_p = 0.95f;
  r.sampling.seed = 7;
  r.stop.ignore_eos = true;  // 60 tokens every time
  const GenerationResult a = engine->generate(r);
  const GenerationResult b = engine->generate(r);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(static_cast<int64_t>(a.tokens.size()), 60);
  r.sampling.seed = 8;
  EXPECT_NE(engine->generate(r).tokens, a.tokens);  // 60 tokens at temperature 0.8: a repeat would be a broken stream

  // llama.cpp's defaults (fdpp generate's: min-p 0.05 on top) are served on the device too.
  r.sampling = SamplingParams{};
  r.sampling.temperature = 0.8f;
  r.sampling.top_k = 40;
  r.sampling.top_p = 0.95f;
  r.sampling.min_p = 0.05f;
  r.sampling.seed = 9;
  const GenerationResult c = engine->generate(r);
  EXPECT_EQ(static_cast<int64_t>(c.tokens.size()), 60);
  EXPECT_EQ(engine->generate(r).tokens, c.tokens);
}

// A repetition penalty is drawn on the device too: greedy with a penalty gives the host sampler's
// tokens (FDPP_GPU_SAMPLING=0: the same logits, penalised by the same operations over the same
// ids), and the penalty changes the text.
TEST(GpuModel, RepetitionPenaltyOnTheDeviceMatchesTheHost) {
  FDPP_REQUIRE_GPU();
  if (!std::filesystem::exists(model_dir())) GTEST_SKIP() << "missing " << model_dir();
  GenerationRequest r;
  r.prompt = read_golden()["prompt_ids"].get<std::vector<int32_t>>();
  r.sampling.temperature = 0.0f;
  r.sampling.repetition_penalty = 1.3f;
  r.stop.max_tokens = 48;
  r.stop.ignore_eos = true;
  const auto on_device = cuda_engine()->generate(r).tokens;
  ::setenv("FDPP_GPU_SAMPLING", "0", 1);
  const auto on_host = cuda_engine()->generate(r).tokens;
  ::unsetenv("FDPP_GPU_SAMPLING");
  EXPECT_EQ(on_device, on_host);
  r.sampling.repetition_penalty = 1.0f;
  EXPECT_NE(cuda_engine()->generate(r).tokens, on_device);
}

// fdpp bench's decode steps end as the engine's do on the GPU: tokens drawn on the device (greedy,
// llama.cpp's set with min-p, a repetition penalty), only the tokens copied back.
TEST(GpuModel, BenchDecodeStepsDrawTokensOnTheDevice) {
  FDPP_REQUIRE_GPU();
  if (!std::filesystem::exists(model_dir())) GTEST_SKIP() << "missing " << model_dir();
  const ModelConfig config = load_model_config(model_dir());
  const WeightStore store = WeightStore::open(model_dir());
  cuda::CudaBackend gpu(0, DType::kF16);
  LlamaModel model(config, bind_llama_weights(store, config), gpu);
  ModelBenchOptions o;
  o.prefill_tokens = {};
  o.batches = {3};
  o.contexts = {40};
  o.decode_steps = 2;
  SamplingParams llama_cpp;
  llama_cpp.temperature = 0.8f;
  llama_cpp.top_k = 40;
  llama_cpp.top_p = 0.95f;
  llama_cpp.min_p = 0.05f;
  SamplingParams penalised = llama_cpp;
  penalised.repetition_penalty = 1.1f;
  for (const auto& [sampling, on_device] : {std::pair{ModelBenchOptions::greedy_sampling(), true},
                                            std::pair{llama_cpp, true}, std::pair{penalised, true}}) {
    o.sampling = sampling;
    const auto rows = run_model_bench(model, gpu, o);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_TRUE(rows[0].skipped.empty()) << rows[0].skipped;
    EXPECT_EQ(rows[0].tokens_on_backend, on_device) << "repetition penalty " << sampling.repetition_penalty;
    EXPECT_GT(rows[0].ms, 0.0);
  }
}

}  // namespace
}  // namespace fdpp
