// The engine's steps queued ahead, without a GPU: the CPU backend draws greedy rows itself and
// feeds them on when FDPP_CPU_GREEDY_FEED=1, as the GPU sampler does. Its fp32 rows do not depend
// on the rest of the batch, so every request's tokens must be exactly those of the engine that
// waits for each step, through EOS, a stop string, a cancel, length, and a request admitted while
// steps are being queued ahead. CPU backend, stories260K.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <vector>

#include "fdpp/engine.h"
#include "fdpp/status.h"
#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"

namespace fdpp {
namespace {

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::kNone;
};

std::unique_ptr<Engine> cpu_engine(bool feed, int32_t max_batch) {
  if (feed) ::setenv("FDPP_CPU_GREEDY_FEED", "1", 1);
  EngineOptions options;
  options.model_dir = test::stories_model_dir();
  options.backend = "cpu";
  options.show_progress = false;
  options.max_batch_size = max_batch;
  auto engine = Engine::create(options);
  ::unsetenv("FDPP_CPU_GREEDY_FEED");
  return engine;
}

nlohmann::json golden() {
  std::ifstream f(std::filesystem::path(FDPP_TEST_DATA_DIR) / "model" / "golden" / "stories260k_once_upon_a_time.json");
  return nlohmann::json::parse(f);
}
std::vector<int32_t> golden_greedy() { return golden()["greedy_ids"].get<std::vector<int32_t>>(); }
std::vector<int32_t> golden_prompt() { return golden()["prompt_ids"].get<std::vector<int32_t>>(); }

// Four greedy requests at once (EOS at the 12th token, a stop string, a cancel at the 9th token,
// length 30), and a fifth submitted at the 5th step, admitted when the cancel frees a place.
std::vector<Outcome> run(bool feed, int64_t* queued_ahead) {
  auto engine = cpu_engine(feed, 4);
  const auto greedy = golden_greedy();
  std::vector<Outcome> out(5);
  auto submit = [&](size_t i, GenerationRequest r, int cancel_at) {
    engine->submit(std::move(r), [&out, i, cancel_at](const TokenEvent& ev) {
      Outcome& o = out[i];
      if (ev.token >= 0 && ev.finish != FinishReason::kEos) o.tokens.push_back(ev.token);
      o.text += ev.text;
      if (ev.finish != FinishReason::kNone) o.finish = ev.finish;
      return cancel_at == 0 || static_cast<int>(o.tokens.size()) < cancel_at;
    });
  };
  GenerationRequest base;
  base.prompt = golden_prompt();
  base.sampling.temperature = 0.0f;
  base.stop.max_tokens = 30;
  base.stop.ignore_eos = true;
  GenerationRequest eos = base, stop = base, other = base;
  eos.stop.ignore_eos = false;
  eos.stop.eos_ids = {greedy[11]};
  stop.stop.stop_strings = {"park"};
  other.prompt = engine->tokenizer().encode("The little dog");
  other.stop.max_tokens = 12;
  submit(0, base, 0);
  submit(1, eos, 0);
  submit(2, stop, 0);
  submit(3, base, 9);
  for (int step = 0; engine->step(); ++step)
    if (step == 4) submit(4, other, 0);
  EXPECT_TRUE(engine->idle());
  *queued_ahead = engine->load().steps_queued_ahead;
  return out;
}

TEST(EngineQueueAhead, OutputsAreTheEngineWaitingForEachStep) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  int64_t ahead_count = 0, plain_count = 0;
  const auto ahead = run(true, &ahead_count);
  const auto plain = run(false, &plain_count);
  EXPECT_EQ(plain_count, 0);
  EXPECT_GT(ahead_count, 20);
  const auto greedy = golden_greedy();
  for (size_t i = 0; i < ahead.size(); ++i) {
    EXPECT_EQ(ahead[i].tokens, plain[i].tokens) << "request " << i;
    EXPECT_EQ(ahead[i].text, plain[i].text) << "request " << i;
    EXPECT_EQ(ahead[i].finish, plain[i].finish) << "request " << i;
  }
  EXPECT_EQ(ahead[0].tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + 30));
  EXPECT_EQ(ahead[0].finish, FinishReason::kLength);
  EXPECT_EQ(ahead[1].tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + 11));
  EXPECT_EQ(ahead[1].finish, FinishReason::kEos);
  EXPECT_EQ(ahead[2].finish, FinishReason::kStopString);
  EXPECT_TRUE(ahead[2].text.ends_with("outside in the ")) << ahead[2].text;
  EXPECT_EQ(ahead[3].tokens.size(), 9u);
  EXPECT_EQ(ahead[3].finish, FinishReason::kCancelled);
  EXPECT_EQ(ahead[4].tokens.size(), 12u);
  EXPECT_EQ(ahead[4].finish, FinishReason::kLength);
}

// generate() on a request that ends by EOS while its next step is queued lands that step before
// it returns; one request alone has every decode step but the first and the last by length queued.
TEST(EngineQueueAhead, GenerateLandsTheStepQueuedAfterItsRequestEnded) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  auto engine = cpu_engine(true, 1);
  const auto greedy = golden_greedy();
  GenerationRequest r;
  r.prompt = golden_prompt();
  r.sampling.temperature = 0.0f;
  r.stop.max_tokens = 40;
  r.stop.eos_ids = {greedy[11]};
  const GenerationResult res = engine->generate(r);
  EXPECT_EQ(res.finish, FinishReason::kEos);
  EXPECT_EQ(res.tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + 11));
  EXPECT_TRUE(engine->idle());
  EXPECT_EQ(engine->load().steps_queued_ahead, 12);  // steps 2-13: 13 was queued while 12 drew the EOS
  r.stop.eos_ids = {};
  r.stop.ignore_eos = true;
  r.stop.max_tokens = 20;
  EXPECT_EQ(engine->generate(r).tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + 20));
  EXPECT_EQ(engine->load().steps_queued_ahead, 12 + 19);  // steps 2-20 of the second request
}

// Host sampling (a temperature) is never queued ahead: the CPU backend feeds greedy rows only.
TEST(EngineQueueAhead, SampledRequestsOnTheHostAreNotQueuedAhead) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  auto engine = cpu_engine(true, 1);
  GenerationRequest r;
  r.prompt = golden_prompt();
  r.sampling.temperature = 0.8f;
  r.sampling.seed = 5;
  r.stop.max_tokens = 10;
  r.stop.ignore_eos = true;
  EXPECT_EQ(engine->generate(r).tokens.size(), 10u);
  EXPECT_EQ(engine->load().steps_queued_ahead, 0);
}

}  // namespace
}  // namespace fdpp
