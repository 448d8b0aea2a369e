// Which sampling parameters the GPU sampler serves, the row it is handed, and the distinct-token
// set its repetition penalty reads (no GPU needed).
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "fdpp/status.h"
#include "runtime/device_sampling.h"

namespace fdpp {
namespace {

TEST(DeviceSampling, ServesGreedyTemperatureTopKTopPAndMinP) {
  SamplingParams p;  // defaults: temperature 1, no filters
  EXPECT_TRUE(device_sampling_supported(p));
  p.temperature = 0.0f;
  EXPECT_TRUE(device_sampling_supported(p));
  p.temperature = 0.7f;
  p.top_k = 40;
  p.top_p = 0.9f;
  p.seed = 5;
  EXPECT_TRUE(device_sampling_supported(p)) << device_sampling_unsupported_reason(p);
  p.min_p = 0.05f;  // llama.cpp's default set (fdpp generate's) stays on the device
  EXPECT_TRUE(device_sampling_supported(p)) << device_sampling_unsupported_reason(p);
}

TEST(DeviceSampling, ServesTheRepetitionPenaltyToo) {
  SamplingParams p;
  p.repetition_penalty = 1.1f;
  p.min_p = 0.05f;
  EXPECT_TRUE(device_sampling_supported(p)) << device_sampling_unsupported_reason(p);
  EXPECT_EQ(device_sampling_row(p, 1, 0).repetition_penalty, 1.1f);
  p.repetition_penalty = 0.0f;  // invalid: the host reports it
  EXPECT_NE(device_sampling_unsupported_reason(p).find("repetition_penalty"), std::string::npos);
}

TEST(DistinctTokens, KeepsEachIdOnceInFirstSeenOrder) {
  DistinctTokens d;
  EXPECT_TRUE(d.ids().empty());
  d.add(std::vector<int32_t>{5, 3, 5, 0, 3});
  d.add(7);
  d.add(3);
  d.add(200000);  // beyond every id seen so far: the seen set grows
  d.add(7);
  const std::vector<int32_t> want = {5, 3, 0, 7, 200000};
  EXPECT_EQ(std::vector<int32_t>(d.ids().begin(), d.ids().end()), want);
}

TEST(DistinctTokens, RefusesNegativeIdsNamingThem) {
  DistinctTokens d;
  try {
    d.add(-4);
    FAIL() << "a negative id was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfRange);
    EXPECT_NE(std::string(e.what()).find("-4"), std::string::npos) << e.what();
  }
}

TEST(DeviceSampling, RefusesInvalidParametersSoTheHostReportsThem) {
  SamplingParams p;
  p.temperature = -1.0f;
  EXPECT_NE(device_sampling_unsupported_reason(p).find("temperature"), std::string::npos);
  p.temperature = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(device_sampling_supported(p));
  p = SamplingParams{};
  p.top_p = 0.0f;
  EXPECT_NE(device_sampling_unsupported_reason(p).find("top_p"), std::string::npos);
  p = SamplingParams{};
  p.top_k = -3;
  EXPECT_NE(device_sampling_unsupported_reason(p).find("top_k"), std::string::npos);
}

TEST(DeviceSampling, RowCarriesTheFiltersSeedAndStep) {
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 50;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  const cuda::DeviceSamplingRow row = device_sampling_row(p, 1234, 17);
  EXPECT_EQ(row.temperature, 0.8f);
  EXPECT_EQ(row.top_k, 50);
  EXPECT_EQ(row.top_p, 0.95f);
  EXPECT_EQ(row.min_p, 0.05f);
  EXPECT_EQ(row.seed, 1234u);
  EXPECT_EQ(row.step, 17u);
}

}  // namespace
}  // namespace fdpp
