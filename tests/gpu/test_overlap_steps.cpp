// Steps queued ahead (engine.cpp, Backend::feeds_sampled_tokens): a decode step queued before the
// previous step's tokens reach the host takes them on the device, and the engine's output is
// what it is without queueing ahead (FDPP_OVERLAP_STEPS=0), through EOS, stop strings, cancels
// and length limits; the token queue behind it hands samples out in order.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <vector>

#include "backend/cuda/sampled_tokens.h"
#include "fdpp/engine.h"
#include "fdpp/status.h"
#include "gpu/gpu_test_util.h"

namespace fdpp {
namespace {

std::filesystem::path model_dir() { return std::filesystem::path(FDPP_SHARED_DIR) / "models" / "stories260K-hf"; }

nlohmann::json read_golden() {
  std::ifstream f(std::filesystem::path(FDPP_TEST_DATA_DIR) / "model" / "golden" / "stories260k_once_upon_a_time.json");
  return nlohmann::json::parse(f);
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::kNone;
};

struct EngineRun {
  std::vector<Outcome> outcomes;  // per request, in submission order
  int64_t steps_queued_ahead = 0;
};

// Submits every request at once (the batch holds them all) and steps the engine until it is idle.
// cancel_after[i] > 0: request i's callback refuses its cancel_after[i]-th token.
EngineRun run_engine(const std::vector<GenerationRequest>& requests, const std::vector<int>& cancel_after, bool overlap) {
  if (!overlap) ::setenv("FDPP_OVERLAP_STEPS", "0", 1);
  EngineOptions options;
  options.model_dir = model_dir();
  options.backend = "cuda";
  options.show_progress = false;
  options.max_batch_size = static_cast<int32_t>(requests.size());
  auto engine = Engine::create(options);
  ::unsetenv("FDPP_OVERLAP_STEPS");
  EngineRun run;
  run.outcomes.resize(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    engine->submit(requests[i], [&run, &cancel_after, i](const TokenEvent& ev) {
      Outcome& o = run.outcomes[i];
      if (ev.token >= 0 && ev.finish != FinishReason::kEos) o.tokens.push_back(ev.token);
      o.text += ev.text;
      if (ev.finish != FinishReason::kNone) o.finish = ev.finish;
      return cancel_after[i] == 0 || static_cast<int>(o.tokens.size()) < cancel_after[i];
    });
  }
  while (engine->step()) {
  }
  EXPECT_TRUE(engine->idle());
  run.steps_queued_ahead = engine->load().steps_queued_ahead;
  return run;
}

GenerationRequest golden_request() {
  GenerationRequest r;
  r.prompt = read_golden()["prompt_ids"].get<std::vector<int32_t>>();
  return r;
}

// Four seeded requests of one length: the batch is the same at every step either way, so every
// token must be the same, and all but the first decode step are queued ahead.
TEST(GpuOverlapSteps, SampledRunsAreTheSameWithAndWithoutQueueingAhead) {
  FDPP_REQUIRE_GPU();
  if (!std::filesystem::exists(model_dir())) GTEST_SKIP() << "missing " << model_dir();
  std::vector<GenerationRequest> requests;
  for (uint64_t seed : {3u, 4u, 5u, 6u}) {
    GenerationRequest r = golden_request();
    r.sampling.temperature = 0.9f;
    r.sampling.top_k = 40;
    r.sampling.top_p = 0.95f;
    r.sampling.min_p = seed == 6 ? 0.05f : 0.0f;
    r.sampling.seed = seed;
    r.stop.max_tokens = 48;
    r.stop.ignore_eos = true;
    requests.push_back(r);
  }
  const std::vector<int> no_cancel(requests.size(), 0);
  const EngineRun ahead = run_engine(requests, no_cancel, true);
  const EngineRun plain = run_engine(requests, no_cancel, false);
  EXPECT_EQ(plain.steps_queued_ahead, 0);
  // Step 1 (the prefill, drawing token 1) queues step 2, and each queued step the next, up to
  // step 48, which draws the 48th and last token: 47 steps queued ahead, none past the length.
  EXPECT_EQ(ahead.steps_queued_ahead, 47);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(ahead.outcomes[i].tokens, plain.outcomes[i].tokens) << "request " << i;
    EXPECT_EQ(ahead.outcomes[i].text, plain.outcomes[i].text) << "request " << i;
    EXPECT_EQ(ahead.outcomes[i].finish, FinishReason::kLength);
    EXPECT_EQ(ahead.outcomes[i].tokens.size(), 48u);
  }
  EXPECT_NE(ahead.outcomes[0].tokens, ahead.outcomes[1].tokens);  // seeds differ: so do the draws
}

// Requests that end early: by EOS (a token of the greedy text named as EOS), a stop string, a
// cancel from the callback, and length. A row whose sequence ended while the step after was
// queued is computed and dropped: nothing more reaches its callback.
TEST(GpuOverlapSteps, EndingsAreTheSameWithAndWithoutQueueingAhead) {
  FDPP_REQUIRE_GPU();
  if (!std::filesystem::exists(model_dir())) GTEST_SKIP() << "missing " << model_dir();
  const auto greedy = read_golden()["greedy_ids"].get<std::vector<int32_t>>();
  std::vector<GenerationRequest> requests(4, golden_request());
  for (auto& r : requests) {
    r.sampling.temperature = 0.0f;
    r.stop.max_tokens = 40;
    r.stop.ignore_eos = true;
  }
  requests[1].stop.ignore_eos = false;
  requests[1].stop.eos_ids = {greedy[11]};  // first drawn as token 12
  requests[2].stop.stop_strings = {"park"};
  requests[3].sampling.temperature = 0.8f;
  requests[3].sampling.seed = 7;
  const std::vector<int> cancel_after = {0, 0, 0, 15};
  const EngineRun ahead = run_engine(requests, cancel_after, true);
  const EngineRun plain = run_engine(requests, cancel_after, false);
  EXPECT_GT(ahead.steps_queued_ahead, 20);
  EXPECT_EQ(plain.steps_queued_ahead, 0);
  const std::vector<int32_t> first40(greedy.begin(), greedy.begin() + 40);
  for (const EngineRun* run : {&ahead, &plain}) {
    const auto& o = run->outcomes;
    EXPECT_EQ(o[0].tokens, first40);
    EXPECT_EQ(o[0].finish, FinishReason::kLength);
    EXPECT_EQ(o[1].tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + 11));
    EXPECT_EQ(o[1].finish, FinishReason::kEos);
    EXPECT_EQ(o[2].finish, FinishReason::kStopString);
    EXPECT_TRUE(o[2].text.ends_with("outside in the ")) << o[2].text;  // the stop string is not shown
    EXPECT_EQ(o[2].tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + static_cast<long>(o[2].tokens.size())));
    EXPECT_EQ(o[3].finish, FinishReason::kCancelled);
    EXPECT_EQ(o[3].tokens.size(), 15u);
  }
  // Until the first request ends (its 12th step) the batches are the same either way, so are the draws.
  EXPECT_EQ(std::vector<int32_t>(ahead.outcomes[3].tokens.begin(), ahead.outcomes[3].tokens.begin() + 11),
            std::vector<int32_t>(plain.outcomes[3].tokens.begin(), plain.outcomes[3].tokens.begin() + 11));
  EXPECT_EQ(ahead.outcomes[2].tokens, plain.outcomes[2].tokens);
}

// The queue behind it: samples come out oldest first, at most two are queued, and a take with
// the wrong row count or from an empty queue is an internal error, not a hang.
TEST(GpuOverlapSteps, SampledTokenQueueHandsSamplesOutInOrder) {
  FDPP_REQUIRE_GPU();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  int32_t* dev = nullptr;
  ASSERT_EQ(cudaMalloc(&dev, 2 * 300 * sizeof(int32_t)), cudaSuccess);
  std::vector<int32_t> a(3), b(300);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int32_t>(7 * i + 1);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int32_t>(1000 - 3 * i);
  ASSERT_EQ(cudaMemcpy(dev, a.data(), a.size() * sizeof(int32_t), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dev + 300, b.data(), b.size() * sizeof(int32_t), cudaMemcpyHostToDevice), cudaSuccess);
  {
    cuda::SampledTokenQueue q;
    std::vector<int32_t> out3(3), out300(300);
    EXPECT_THROW(q.pop(out3), Error);
    for (int round = 0; round < 3; ++round) {  // slots reused, the second one grown past 64 rows
      q.push(dev, 3, stream);
      q.push(dev + 300, 300, stream);
      EXPECT_EQ(q.queued(), 2);
      EXPECT_THROW(q.push(dev, 3, stream), Error);
      EXPECT_THROW(q.pop(out300), Error);  // the oldest has 3 rows
      q.pop(out3);
      EXPECT_EQ(out3, a);
      q.pop(out300);
      EXPECT_EQ(out300, b);
      EXPECT_EQ(q.queued(), 0);
    }
    q.push(dev, 3, stream);  // left queued: the destructor waits for it
  }
  cudaFree(dev);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace fdpp
