// fdpp tune as a user runs it on the GPU: the sweep, the step check where the sweep changes a
// shape's choice (child `fdpp bench` runs), and the table it writes.
#include <gtest/gtest.h>

#include <string>

#include "backend/linear_table.h"
#include "gpu_test_util.h"
#include "support/test_paths.h"

namespace fdpp {
namespace {

TEST(TuneCli, WritesTheStepCheckedTableForEveryShape) {
  FDPP_REQUIRE_GPU();
  test::TempDir dir;
  const auto table_path = dir / "table.json";
  const std::string command = "'" + test::fdpp_binary().string() + "' tune --shape tiny --max-m 16 --step-rounds 1 " +
                              "--step-context 64 -o '" + table_path.string() + "'";
  const auto r = test::run_command(command);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("wrote " + table_path.string()), std::string::npos) << r.out;
  const LinearTable table = LinearTable::load(table_path);
  EXPECT_GE(table.size(), 4u) << r.out;  // tiny: qkv, o, gate_up, down, lm_head (some may share a shape)
  // Each step check prints its table and the inflection it kept, which is the one written.
  size_t at = 0;
  while ((at = r.out.find("step check, ", at)) != std::string::npos) {
    const size_t line_end = r.out.find('\n', at);
    const std::string line = r.out.substr(at, line_end - at);
    EXPECT_NE(line.find(" kept"), std::string::npos) << line;
    EXPECT_NE(r.out.find("| batch | sweep's choice | ms/step |", line_end), std::string::npos) << r.out;
    at = line_end;
  }
}

}  // namespace
}  // namespace fdpp
