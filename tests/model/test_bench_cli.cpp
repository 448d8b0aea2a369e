// fdpp bench as a user runs it: a named shape with random weights and a model directory on the
// CPU backend, JSON output, skipped cases, the kernel timeline where the backend has none, and bad
// arguments.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/model_shapes.h"
#include "support/test_paths.h"

namespace fdpp {
namespace {

std::string fdpp() { return "'" + test::fdpp_binary().string() + "' "; }

TEST(BenchCli, NamedShapeWithRandomWeightsReportsEveryCase) {
  const auto r = test::run_command(fdpp() + "bench --shape tiny --backend cpu --prefill 8,32 --batch 1,3 "
                                            "--context 16,100 --steps 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "cpu");
  ASSERT_EQ(j["rows"].size(), 2u + 2u * 2u);
  for (const auto& row : j["rows"]) {
    EXPECT_FALSE(row.contains("skipped")) << row.dump();
    EXPECT_GT(row["ms"].get<double>(), 0.0) << row.dump();
    EXPECT_GT(row["tokens_per_s"].get<double>(), 0.0) << row.dump();
    if (row["phase"] == "decode") {
      // bytes per step: every streamed weight plus batch x context KV rows
      EXPECT_GT(row["bytes"].get<double>(), j["weight_bytes_per_step"].get<double>()) << row.dump();
      EXPECT_GT(row["gbps"].get<double>(), 0.0);
    }
  }
}

TEST(BenchCli, DecodeStepsSampleWithTheGivenParametersOnTheHostSamplerOfTheCpu) {
  // The CPU backend has no sampler: its steps end with the host sampler over copied logits,
  // greedy by default or with generate's parameters.
  const std::string cases = "bench --shape tiny --backend cpu --prefill 8 --batch 2 --context 16 --steps 2 --json";
  for (const char* flags : {"", " --temp 0.8 --top-k 40 --top-p 0.95 --min-p 0.05 --repeat-penalty 1.1"}) {
    const auto r = test::run_command(fdpp() + cases + flags);
    ASSERT_EQ(r.exit_code, 0) << flags << ": " << r.err;
    const auto rows = nlohmann::json::parse(r.out)["rows"];
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[1]["sampled_on"], "host") << flags;
    EXPECT_GT(rows[1]["ms"].get<double>(), 0.0) << flags;
  }
}

TEST(BenchCli, DecodeStepsAreQueuedAheadWhereTheBackendFeedsItsTokensOn) {
  // FDPP_CPU_GREEDY_FEED=1: the CPU backend draws greedy rows and feeds them on, as the GPU does;
  // the bench then queues each step before taking the last one's tokens. Not with a temperature.
  const std::string cases = "bench --shape tiny --backend cpu --prefill 8 --batch 1,3 --context 16 --steps 3 --json";
  for (const auto& [flags, ahead] : {std::pair{"", true}, std::pair{" --temp 0.8", false}}) {
    const auto r = test::run_command("FDPP_CPU_GREEDY_FEED=1 " + fdpp() + cases + flags);
    ASSERT_EQ(r.exit_code, 0) << flags << ": " << r.err;
    const auto rows = nlohmann::json::parse(r.out)["rows"];
    ASSERT_EQ(rows.size(), 3u);
    for (size_t i = 1; i < 3; ++i) {
      EXPECT_EQ(rows[i]["steps_queued_ahead"], ahead) << flags << rows[i].dump();
      EXPECT_EQ(rows[i]["sampled_on"], ahead ? "device" : "host") << flags;
      EXPECT_GT(rows[i]["ms"].get<double>(), 0.0) << flags;
    }
  }
}

TEST(BenchCli, ModelDirectoryAndCasesPastTheContext) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  const auto r = test::run_command(fdpp() + "bench -m '" + test::stories_model_dir().string() +
                                   "' --backend cpu --prefill 600 --batch 1 --context 32,510 --steps 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = nlohmann::json::parse(r.out)["rows"];
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_NE(rows[0]["skipped"].get<std::string>().find("context"), std::string::npos);  // 600 > 512
  EXPECT_FALSE(rows[1].contains("skipped"));
  EXPECT_TRUE(rows[2].contains("skipped"));  // 510 + steps > 512
}

TEST(BenchCli, MaxModelLenAllowsContextsPastTheModels) {
  // tiny's config stops at 2048 positions: without the flag the 3000-token cases are skipped.
  const std::string cases = "bench --shape tiny --backend cpu --prefill 3000 --batch 1 --context 3000 --steps 2 --json";
  const auto plain = test::run_command(fdpp() + cases);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  for (const auto& row : nlohmann::json::parse(plain.out)["rows"]) EXPECT_TRUE(row.contains("skipped")) << row.dump();
  const auto longer = test::run_command(fdpp() + cases + " --max-model-len 4096");
  ASSERT_EQ(longer.exit_code, 0) << longer.err;
  const auto rows = nlohmann::json::parse(longer.out)["rows"];
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    EXPECT_FALSE(row.contains("skipped")) << row.dump();
    EXPECT_GT(row["ms"].get<double>(), 0.0) << row.dump();
  }
}

TEST(BenchCli, TimelineOnABackendThatRecordsNoneSaysWhy) {
  // The CPU backend has no kernel timeline: the steps still run (the context they need is
  // checked) and the reason is given, once in the table and per row in JSON.
  const std::string cases = "bench --shape tiny --backend cpu --prefill 8 --batch 1,2 --context 16 --steps 2 --timeline 3";
  const auto table = test::run_command(fdpp() + cases);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  const std::string said = "# kernel timeline: not recorded (the cpu backend records no kernel timeline)";
  const size_t at = table.out.find(said);
  ASSERT_NE(at, std::string::npos) << table.out;
  EXPECT_EQ(table.out.find(said, at + 1), std::string::npos) << "said more than once: " << table.out;
  const auto json = test::run_command(fdpp() + cases + " --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto rows = nlohmann::json::parse(json.out)["rows"];
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_FALSE(rows[0].contains("timeline_note"));  // prefill: no timeline asked for
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["timeline_note"], "the cpu backend records no kernel timeline") << rows[i].dump();
    EXPECT_FALSE(rows[i].contains("timeline"));
  }
  // The timeline's steps come after the timed ones and need their positions too.
  const auto past = test::run_command(fdpp() + "bench --shape tiny --backend cpu --prefill 8 --batch 1 --context 2040 "
                                               "--steps 2 --timeline 8 --json");
  ASSERT_EQ(past.exit_code, 0) << past.err;
  EXPECT_TRUE(nlohmann::json::parse(past.out)["rows"][1].contains("skipped")) << past.out;  // 2040 + 11 > 2048
}

TEST(BenchCli, BadArgumentsFailWithAClearMessage) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bench --backend cpu", "exactly one of"},
      {"bench --shape llama9-1b --backend cpu", "unknown model shape 'llama9-1b'"},
      {"bench --shape tiny --backend cpu --steps 0", "--steps must be positive"},
      {"bench --shape tiny --backend cpu --batch 0", "--batch: values must be positive"},
      {"bench --shape tiny --backend cpu --max-model-len -5", "--max-model-len must be positive, found -5"},
      {"bench --shape tiny --backend cpu --timeline -1", "--timeline must be 0 or more steps, found -1"},
      {"bench --shape tiny --backend cpu --top-p 1.5", "top_p"},
      {"bench --shape tiny --backend cpu --temp -1", "temperature"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = test::run_command(fdpp() + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << ": " << r.err;
  }
}

TEST(BenchCli, NamedShapesMatchThePublishedConfigs) {
  const ModelConfig l2 = named_model_shape("llama2-7b");
  EXPECT_EQ(l2.hidden_size, 4096);
  EXPECT_EQ(l2.num_key_value_heads, 32);
  EXPECT_EQ(l2.intermediate_size, 11008);
  const ModelConfig l3 = named_model_shape("llama3-8b");
  EXPECT_EQ(l3.num_key_value_heads, 8);
  EXPECT_EQ(l3.vocab_size, 128256);
  EXPECT_FLOAT_EQ(l3.rope_theta, 500000.0f);
  const ModelConfig q2 = named_model_shape("qwen2-7b");
  EXPECT_TRUE(q2.attention_bias);
  EXPECT_EQ(q2.head_dim, 128);
}

}  // namespace
}  // namespace fdpp
