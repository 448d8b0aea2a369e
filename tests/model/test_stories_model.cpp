// The whole model on the CPU backend against golden output of Hugging Face transformers
// (tools/hf_golden_stories.py, run once on the GPU machine; kept in tests/model/golden/).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "fdpp/engine.h"
#include "model/config.h"
#include "model/llama_model.h"
#include "model/weight_store.h"
#include "model/weights.h"
#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"

namespace fdpp {
namespace {

nlohmann::json golden() {
  return nlohmann::json::parse(
      test::read_file(test::test_data_dir() / "model" / "golden" / "stories260k_once_upon_a_time.json"));
}

std::unique_ptr<Engine> stories_engine(int32_t max_batch = 1) {
  EngineOptions options;
  options.model_dir = test::stories_model_dir();
  options.backend = "cpu";
  options.show_progress = false;
  options.max_batch_size = max_batch;
  return Engine::create(options);
}

GenerationRequest greedy_request(std::vector<int32_t> prompt, int32_t n) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0.0f;
  r.stop.max_tokens = n;
  return r;
}

TEST(StoriesModel, PromptTokensMatchHuggingFace) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  const auto g = golden();
  auto engine = stories_engine();
  EXPECT_EQ(engine->tokenizer().encode(g["prompt"].get<std::string>()),
            g["prompt_ids"].get<std::vector<int32_t>>());
}

TEST(StoriesModel, PrefillLogitsMatchHuggingFace) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  const auto g = golden();
  const ModelConfig config = load_model_config(test::stories_model_dir());
  const WeightStore store = WeightStore::open(test::stories_model_dir());
  CpuBackend backend;
  LlamaModel model(config, bind_llama_weights(store, config), backend);
  backend.init_kv_cache({config.num_hidden_layers, 4, 16, config.num_key_value_heads, config.head_dim});

  const auto prompt = g["prompt_ids"].get<std::vector<int32_t>>();
  StepBatch batch;
  batch.tokens = prompt;
  for (size_t i = 0; i < prompt.size(); ++i) {
    batch.positions.push_back(static_cast<int32_t>(i));
    batch.token_seq.push_back(0);
  }
  batch.block_tables = {2, 0, 3, 1};  // deliberately not in order: slots go through the table
  batch.max_blocks_per_seq = 4;
  batch.logit_rows = {static_cast<int32_t>(prompt.size() - 1)};
  std::vector<float> logits;
  model.forward(batch, logits);
  ASSERT_EQ(logits.size(), static_cast<size_t>(config.vocab_size));
  const auto expected = g["prefill_last_logits_first16"].get<std::vector<float>>();
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(logits[i], expected[i], 2e-4) << "logit " << i;
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  EXPECT_NEAR(max_logit, g["step_max_logit"][0].get<float>(), 2e-4);
}

TEST(StoriesModel, GreedyContinuationMatchesHuggingFace) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  const auto g = golden();
  auto engine = stories_engine();
  const auto expected_ids = g["greedy_ids"].get<std::vector<int32_t>>();
  const GenerationResult r = engine->generate(
      greedy_request(g["prompt_ids"].get<std::vector<int32_t>>(), static_cast<int32_t>(expected_ids.size())));
  EXPECT_EQ(r.tokens, expected_ids);
  EXPECT_EQ(r.text, g["text"].get<std::string>());
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.stats.generated_tokens, static_cast<int64_t>(expected_ids.size()));
}

TEST(StoriesModel, BatchedSequencesMatchTheirSoloRuns) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  auto engine = stories_engine(4);
  const std::vector<std::string> prompts = {"Once upon a time", "Lily and Tom went to the park",
                                            "The cat", "One day, a little bird"};
  std::vector<std::vector<int32_t>> solo;
  for (const auto& p : prompts)
    solo.push_back(engine->generate(greedy_request(engine->tokenizer().encode(p), 24)).tokens);

  std::vector<std::vector<int32_t>> batched(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    engine->submit(greedy_request(engine->tokenizer().encode(prompts[i]), 24), [&, i](const TokenEvent& ev) {
      if (ev.token >= 0 && ev.finish != FinishReason::kEos) batched[i].push_back(ev.token);
      return true;
    });
    engine->step();  // later requests join a batch that is already decoding
  }
  while (engine->step()) {
  }
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(batched[i], solo[i]) << prompts[i];
}

TEST(StoriesModel, SeededSamplingIsReproducible) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  auto engine = stories_engine();
  auto sampled = [&](uint64_t seed) {
    GenerationRequest r = greedy_request(engine->tokenizer().encode("Once upon a time"), 40);
    r.sampling.temperature = 1.0f;
    r.sampling.top_p = 0.9f;
    r.sampling.seed = seed;
    return engine->generate(std::move(r)).tokens;
  };
  const auto a = sampled(1234);
  EXPECT_EQ(a, sampled(1234));
  EXPECT_NE(a, sampled(99));
}

TEST(StoriesModel, StopStringEndsGenerationAndIsNotEmitted) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  auto engine = stories_engine();
  GenerationRequest r = greedy_request(engine->tokenizer().encode("Once upon a time"), 60);
  r.stop.stop_strings = {"Lily."};
  const GenerationResult res = engine->generate(std::move(r));
  EXPECT_EQ(res.finish, FinishReason::kStopString);
  EXPECT_EQ(res.text, ", there was a little girl named ");
}

TEST(StoriesModel, RejectsPromptsThatDoNotFit) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  auto engine = stories_engine();
  std::vector<int32_t> long_prompt(static_cast<size_t>(engine->max_context()), 403);
  try {
    engine->submit(greedy_request(long_prompt, 1), {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfRange);
    EXPECT_NE(std::string(e.what()).find("512 tokens"), std::string::npos) << e.what();
  }
  EXPECT_THROW(engine->submit(greedy_request({1, 403}, 0), {}), Error);
  EXPECT_THROW(engine->submit(greedy_request({}, 5), {}), Error);
  EXPECT_THROW(engine->submit(greedy_request({1, 9999}, 5), {}), Error);
  EXPECT_THROW(engine->submit(greedy_request({1, 403}, 600), {}), Error);
}

}  // namespace
}  // namespace fdpp
