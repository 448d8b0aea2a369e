// Calibration of the unified max value: histogram statistics, the choice of phi and [lo, hi],
// the softmax_range.json format and its errors, and `fdpp calibrate` end to end.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

#include "core/histogram.h"
#include "fdpp/engine.h"
#include "runtime/softmax_calibration.h"
#include "support/test_paths.h"

namespace fdpp {
namespace {

TEST(SoftmaxCalibration, HistogramQuantilesAndCoverage) {
  Histogram h;
  for (int i = 0; i < 10000; ++i) h.add(static_cast<float>(i) / 100.0f);  // 0.00 .. 99.99
  EXPECT_EQ(h.count(), 10000);
  EXPECT_FLOAT_EQ(h.min(), 0.0f);
  EXPECT_NEAR(h.max(), 99.99f, 1e-4);
  EXPECT_NEAR(h.quantile(0.5), 50.0f, 0.05f);
  EXPECT_NEAR(h.quantile(0.01), 1.0f, 0.05f);
  EXPECT_NEAR(h.fraction_within(0.0f, 50.0f), 0.5, 0.002);
  EXPECT_NEAR(h.fraction_within(-1000.0f, 1000.0f), 1.0, 1e-12);
  Histogram g;
  g.add(-2000.0f);  // outside the grid: counted, and only a range reaching it covers it
  g.add(3.0f);
  h.merge(g);
  EXPECT_EQ(h.count(), 10002);
  EXPECT_FLOAT_EQ(h.min(), -2000.0f);
  EXPECT_NEAR(h.fraction_within(-600.0f, 600.0f), 10001.0 / 10002.0, 1e-9);
}

TEST(SoftmaxCalibration, PhiCentresTheObservedRangeAndCoversTheMax) {
  std::mt19937 rng(3);
  std::normal_distribution<float> scores(-5.0f, 4.0f);  // a Llama-like spread
  Histogram h;
  for (int i = 0; i < 200000; ++i) h.add(scores(rng));
  const LayerSoftmaxStats s = calibrate_layer(h);
  EXPECT_NEAR(s.range.phi, -5.0f, 0.5f);
  EXPECT_FLOAT_EQ(s.range.hi - s.range.phi, kSoftmaxHalfWindow);
  EXPECT_FLOAT_EQ(s.range.phi - s.range.lo, kSoftmaxHalfWindow);
  EXPECT_GE(s.coverage, 0.9999);
  EXPECT_LE(s.observed_low, -5.0f - 4.0f * 3.5f);
  EXPECT_GE(s.observed_high, -5.0f + 4.0f * 3.5f);

  Histogram skewed;  // a long low tail: phi moves up so hi still clears the largest score
  for (int i = 0; i < 100000; ++i) skewed.add(-static_cast<float>(i % 200));
  skewed.add(25.0f);
  const LayerSoftmaxStats k = calibrate_layer(skewed);
  EXPECT_GE(k.range.hi, 26.0f);
  EXPECT_LT(k.coverage, 0.9999);  // reported, not hidden
}

TEST(SoftmaxCalibration, FileRoundTripAndErrors) {
  test::TempDir dir;
  std::vector<Histogram> layers(3);
  std::mt19937 rng(4);
  std::normal_distribution<float> d(1.0f, 3.0f);
  for (auto& h : layers)
    for (int i = 0; i < 5000; ++i) h.add(d(rng));
  const SoftmaxCalibration c = calibrate(layers);
  const auto path = dir / "softmax_range.json";
  write_softmax_calibration(path, c);
  const SoftmaxCalibration back = read_softmax_calibration(path, 3);
  ASSERT_EQ(back.layers.size(), 3u);
  EXPECT_FLOAT_EQ(back.layers[1].range.phi, c.layers[1].range.phi);
  EXPECT_EQ(back.model.samples, 15000);
  EXPECT_EQ(per_layer_ranges(back, 3).size(), 3u);

  auto expect_error = [&](const std::string& text, const std::string& needle, int64_t layers_expected = 3) {
    test::write_file(path, text);
    try {
      read_softmax_calibration(path, layers_expected);
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("{not json", "malformed JSON");
  expect_error("[]", "'model'");
  expect_error(R"({"model": {"phi": 0, "lo": -60}})", "field 'hi'");
  expect_error(R"({"model": {"phi": "zero", "lo": -60, "hi": 60}})", "field 'phi': expected a number");
  expect_error(R"({"model": {"phi": 0, "lo": 10, "hi": 60}})", "lo <= phi <= hi");
  expect_error(R"({"model": {"phi": 0, "lo": -60, "hi": 90}})", "could leave fp32");
  expect_error(R"({"model": {"phi": 0, "lo": -60, "hi": 60}, "layers": [{"phi": 0, "lo": -1, "hi": 1}]})",
               "expected 3 entries");
  EXPECT_THROW(read_softmax_calibration(dir / "absent.json", 3), Error);
}

TEST(SoftmaxCalibration, CalibrateCommandWritesAFileTheEngineLoads) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  test::TempDir dir;
  // A model directory of links to the shared files, so the calibration file can sit beside them.
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    std::filesystem::create_symlink(test::stories_model_dir() / f, dir / f);
  const auto r = test::run_command("'" + test::fdpp_binary().string() + "' calibrate -m '" + dir.path().string() +
                                   "' -n 8");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("layer   4"), std::string::npos) << r.out;
  const SoftmaxCalibration c = read_softmax_calibration(dir / kSoftmaxRangeFile, 5);
  EXPECT_GT(c.model.samples, 10000);
  for (const auto& l : c.layers) EXPECT_GE(l.range.hi, l.max);  // overflow side always covered

  EngineOptions options;
  options.model_dir = dir.path();
  options.backend = "cpu";
  options.show_progress = false;
  EXPECT_NO_THROW(Engine::create(options));
  test::write_file(dir / kSoftmaxRangeFile, "{\"model\": 5}");
  try {
    Engine::create(options);
    FAIL() << "a malformed softmax_range.json must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("softmax_range.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fdpp
