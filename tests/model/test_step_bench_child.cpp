// The step check's child bench (runtime/step_bench_child.h) on the CPU backend: decode step times
// per batch from a real `fdpp bench --json` child, a failing child's error named and quoted, and
// `fdpp tune`'s step flags checked.
#include <gtest/gtest.h>

#include "fdpp/status.h"
#include "runtime/step_bench_child.h"
#include "support/test_paths.h"

namespace fdpp {
namespace {

StepBenchTarget tiny_on_cpu() {
  StepBenchTarget t;
  t.fdpp_binary = test::fdpp_binary();
  t.shape = "tiny";
  t.backend = "cpu";
  t.context = 32;
  t.steps = 2;
  return t;
}

TEST(StepBenchChild, TimesEveryBatchInAChildProcess) {
  // The CPU backend ignores the table; a path with a quote in it must still reach the child intact.
  test::TempDir dir;
  const auto ms = child_decode_step_ms(tiny_on_cpu(), dir / "it's absent.json", {1, 3});
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_GT(ms.at(1), 0.0);
  EXPECT_GT(ms.at(3), 0.0);
  EXPECT_TRUE(child_decode_step_ms(tiny_on_cpu(), dir / "t.json", {}).empty());
}

TEST(StepBenchChild, AFailingChildIsNamedWithItsError) {
  StepBenchTarget t = tiny_on_cpu();
  t.shape = "no-such-shape";
  try {
    child_decode_step_ms(t, "/nonexistent/table.json", {1});
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--shape 'no-such-shape'"), std::string::npos) << what;
    EXPECT_NE(what.find("unknown model shape"), std::string::npos) << what;
    EXPECT_NE(what.find("/nonexistent/table.json"), std::string::npos) << what;
  }
  t.model_dir = "/some/dir";  // both a directory and a shape
  EXPECT_THROW(child_decode_step_ms(t, "t.json", {1}), Error);
}

// Checked before any GPU work, so on every machine.
TEST(StepBenchChild, TuneNamesBadStepFlags) {
  for (const char* flags : {"--step-rounds 0", "--step-context -5"}) {
    const auto r = test::run_command("'" + test::fdpp_binary().string() + "' tune --shape tiny " + flags);
    EXPECT_NE(r.exit_code, 0) << flags;
    EXPECT_NE(r.err.find("--step-rounds and --step-context must be positive"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace fdpp
