// Engine occupancy for serving: the bounded waiting queue (QueueFullError), load() figures
// (running, waiting, KV blocks) and cancellation freeing KV blocks. CPU backend, stories260K.
#include <gtest/gtest.h>

#include "fdpp/engine.h"
#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"

namespace fdpp {
namespace {

std::unique_ptr<Engine> engine_with(int32_t max_batch, int32_t max_waiting) {
  EngineOptions options;
  options.model_dir = test::stories_model_dir();
  options.backend = "cpu";
  options.show_progress = false;
  options.max_batch_size = max_batch;
  options.max_waiting = max_waiting;
  return Engine::create(options);
}

GenerationRequest request(const Engine& e, int32_t n) {
  GenerationRequest r;
  r.prompt = e.tokenizer().encode("Once upon a time");
  r.sampling.temperature = 0.0f;
  r.stop.max_tokens = n;
  r.stop.ignore_eos = true;
  return r;
}

TEST(EngineLoad, WaitingQueueIsBoundedAndAdmitsWhenTheBatchHasRoom) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  auto engine = engine_with(1, 2);
  const int64_t per_request_blocks = (5 + 20 + 15) / 16;  // prompt 5 + 20 tokens, 16-token blocks
  engine->submit(request(*engine, 20), {});
  engine->submit(request(*engine, 20), {});
  // Between steps a third request first admits the head of the queue into the empty batch.
  engine->submit(request(*engine, 20), {});
  EngineLoad l = engine->load();
  EXPECT_EQ(l.running, 1);
  EXPECT_EQ(l.waiting, 2);
  EXPECT_EQ(l.kv_blocks_used, per_request_blocks);
  EXPECT_EQ(l.max_waiting, 2);
  EXPECT_THROW(engine->submit(request(*engine, 20), {}), QueueFullError);
  try {
    engine->submit(request(*engine, 20), {});
  } catch (const QueueFullError& e) {
    EXPECT_NE(std::string(e.what()).find("waiting"), std::string::npos) << e.what();
  }
  while (engine->step()) {
  }
  l = engine->load();
  EXPECT_EQ(l.running, 0);
  EXPECT_EQ(l.waiting, 0);
  EXPECT_EQ(l.kv_blocks_used, 0);
  EXPECT_GT(l.kv_blocks_total, 0);
  EXPECT_EQ(l.kv_block_size, 16);
  EXPECT_EQ(l.softmax_fallbacks, 0);  // the CPU backend has no unified-max softmax
  EXPECT_EQ(l.steps_queued_ahead, 0);  // nor a sampler to feed the next step from
}

TEST(EngineLoad, CancellingARunningRequestFreesItsBlocks) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  auto engine = engine_with(4, 0);
  int events = 0;
  FinishReason last = FinishReason::kNone;
  const uint64_t id = engine->submit(request(*engine, 200), [&](const TokenEvent& ev) {
    ++events;
    last = ev.finish;
    return true;
  });
  engine->step();
  engine->step();
  EXPECT_GT(engine->load().kv_blocks_used, 0);
  engine->cancel(id);
  EXPECT_EQ(last, FinishReason::kCancelled);
  EXPECT_EQ(engine->load().kv_blocks_used, 0);
  EXPECT_EQ(engine->load().running, 0);
  EXPECT_TRUE(engine->idle());

  // A callback returning false cancels too.
  int seen = 0;
  engine->submit(request(*engine, 200), [&](const TokenEvent& ev) {
    last = ev.finish;
    return ++seen < 3;
  });
  while (engine->step()) {
  }
  EXPECT_EQ(last, FinishReason::kCancelled);
  EXPECT_EQ(engine->load().kv_blocks_used, 0);
}

TEST(EngineLoad, RejectsNegativeMaxWaiting) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  EXPECT_THROW(engine_with(1, -1), Error);
}

}  // namespace
}  // namespace fdpp
