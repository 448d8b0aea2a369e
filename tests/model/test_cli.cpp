// The fdpp binary as a user runs it: output, exit status, error messages.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace fdpp {
namespace {

std::string model_arg() { return "-m '" + test::stories_model_dir().string() + "'"; }
std::string fdpp() { return "'" + test::fdpp_binary().string() + "'"; }

TEST(Cli, GenerateGreedyPrintsTheModelsStory) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  const auto golden = nlohmann::json::parse(
      test::read_file(test::test_data_dir() / "model" / "golden" / "stories260k_once_upon_a_time.json"));
  const auto r = test::run_command(fdpp() + " generate " + model_arg() +
                                   " -p 'Once upon a time' -n 60 --temp 0 --backend cpu");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Once upon a time" + golden["text"].get<std::string>() + "\n");
  // The speed summary goes to stderr, one line, with tokens/s and ms/token.
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ms/token"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("GB/s"), std::string::npos) << r.err;
}

TEST(Cli, SeededSamplingIsReproducibleAcrossRuns) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  const std::string cmd = fdpp() + " generate " + model_arg() + " -p 'Once upon a time' -n 30 --seed 42 --no-progress";
  const auto a = test::run_command(cmd);
  const auto b = test::run_command(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST(Cli, TokenizePrintsIds) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  const auto r = test::run_command(fdpp() + " tokenize " + model_arg() + " 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1 403 407 261 378\n");
}

struct BadInvocation {
  const char* name;
  std::string args;
  const char* message;  // must appear in stderr
};

TEST(Cli, BadInputsFailWithAClearMessage) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  const std::vector<BadInvocation> cases = {
      {"zero tokens", "generate " + model_arg() + " -p hi -n 0", "at least 1, found 0"},
      {"negative tokens", "generate " + model_arg() + " -p hi -n -5", "at least 1, found -5"},
      {"invalid UTF-8", "generate " + model_arg() + " -p $'ab\\xff'", "UTF-8"},
      {"prompt too long", "generate " + model_arg() + " -p \"$(printf 'once upon a time %.0s' $(seq 200))\"",
       "context"},
      {"missing model dir", "generate -m /nonexistent/model -p hi", "/nonexistent/model"},
      {"unknown backend", "generate " + model_arg() + " -p hi --backend tpu", "tpu"},
      {"unknown dtype", "generate " + model_arg() + " -p hi --dtype f8", "--dtype 'f8'"},
      {"bad temperature", "generate " + model_arg() + " -p hi --temp -1", "temperature"},
      {"missing prompt", "generate " + model_arg(), "prompt"},
  };
  for (const auto& c : cases) {
    const auto r = test::run_command(fdpp() + " " + c.args);
    EXPECT_NE(r.exit_code, 0) << c.name;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.name << ": " << r.err;
  }
}

TEST(Cli, HelpWorksEverywhere) {
  for (const char* sub : {"", " generate", " tokenize"}) {
    const auto r = test::run_command(fdpp() + sub + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub << ": " << r.out;
  }
}

}  // namespace
}  // namespace fdpp
