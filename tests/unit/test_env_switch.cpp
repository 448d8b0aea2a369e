// The A/B switches' one reader (backend/cuda/env_switch.h): a whole decimal number, else -1.
#include "backend/cuda/env_switch.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace fdpp {
namespace {

TEST(EnvSwitch, NumbersOnlyElseMinusOne) {
  constexpr const char* kName = "FDPP_TEST_ENV_SWITCH";
  ::unsetenv(kName);
  EXPECT_EQ(cuda::env_switch(kName), -1);  // unset
  const struct {
    const char* value;
    int want;
  } cases[] = {{"0", 0}, {"1", 1}, {"64", 64}, {"-3", -3}, {"", -1}, {"on", -1}, {"4x", -1}, {"1.5", -1}};
  for (const auto& c : cases) {
    ::setenv(kName, c.value, 1);
    EXPECT_EQ(cuda::env_switch(kName), c.want) << "'" << c.value << "'";
  }
  ::unsetenv(kName);
}

}  // namespace
}  // namespace fdpp
